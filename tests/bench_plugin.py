"""Methods for the bench tests, registered only in the worker processes that import them.

The bench tests pass ``imports=("bench_plugin",)``: a worker imports this
module before solving, so these methods exist there and never in the test
process's registry (where other tests iterate over every method).
"""

from __future__ import annotations

import os
import time

from memopt.heuristics.orders import given_order
from memopt.plan import Plan
from memopt.solve import MethodOutput, register_method


def _only_in_bench_tests(req):
    # belt and braces: should this module ever be imported elsewhere, its methods refuse every request
    return None if os.environ.get("MEMOPT_TEST_PLUGIN") == "1" else "a test method of tests/bench_plugin.py"


@register_method("test-probe", objectives=("peak", "time"), family="heuristic", check=_only_in_bench_tests)
def run_probe(req, opts):
    """The given order, reporting where it ran and with how many threads."""
    plan = Plan.from_order(req.instance, given_order(req.instance))
    return MethodOutput(plan, "feasible", stats={"pid": os.getpid(), "threads": opts.threads, "seed": opts.seed})


@register_method("test-stuck", objectives=("peak", "time"), family="heuristic", check=_only_in_bench_tests)
def run_stuck(req, opts):
    """Ignores its time limit: the bench must kill it."""
    time.sleep(120)
    return MethodOutput(None, "unknown")


@register_method("test-crash", objectives=("peak", "time"), family="heuristic", check=_only_in_bench_tests)
def run_crash(req, opts):
    """Raises, as a buggy method would."""
    raise ValueError("boom")
