"""The core: the problem and its answer, with no solving in it.

The instance and its validation (:mod:`.instance`, :mod:`.instance_file`,
:mod:`.files`), plans (:mod:`.plan`), the evaluator that judges every plan
(:mod:`.evaluate`), the simple lower bounds (:mod:`.bounds`), errors,
statuses, requests and results. Every other layer of memopt builds on this
one; it imports nothing above it.
"""
