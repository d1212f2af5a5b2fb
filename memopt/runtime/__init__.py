"""Run the plans in PyTorch: a training step that keeps to the budget, measured.

>>> step = plan_step(model, x, y, F.cross_entropy, budget="0.6x")   # doctest: +SKIP
>>> loss = step(x, y)            # one training step; every p.grad set as loss.backward() would
>>> step.measure(x, y)           # predicted peak beside two measures of the fast memory held

One idea per module: :mod:`~memopt.runtime.fusion` (in-place chains become
one task), :mod:`~memopt.runtime.program` (plan tasks ↔ fx nodes),
:mod:`~memopt.runtime.normalize` (a plan runnable as priced),
:mod:`~memopt.runtime.values` (fast memory and its own accounting),
:mod:`~memopt.runtime.transfer` (slow memory, the channel),
:mod:`~memopt.runtime.executor` (the stages), :mod:`~memopt.runtime.measure`
(the independent storage measure), :mod:`~memopt.runtime.profile` (costs
from measurement), :mod:`~memopt.runtime.reference` (the plain PyTorch step,
equality, timing), :mod:`~memopt.runtime.step` (the planned step),
:mod:`~memopt.runtime.build` (trace → solve → step),
:mod:`~memopt.runtime.report` (the figures of ``memopt run``). See
docs/runtime.md; ``memopt run`` (:mod:`memopt.commands.run`) is the shell.
"""

from memopt.runtime.build import (
           COSTS,
           DEFAULT_BANDWIDTH,
           PreparedStep,
           parse_budget,
           plan_step,
           prepare_step,
)
from memopt.runtime.reference import Comparison, compare, plain_step
from memopt.runtime.step import Measurement, PlannedStep

__all__ = ["COSTS", "DEFAULT_BANDWIDTH", "Comparison", "Measurement", "PlannedStep", "PreparedStep", "compare",
           "parse_budget", "plain_step", "plan_step", "prepare_step"]
