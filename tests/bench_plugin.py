"""Methods for the bench tests, added to the catalog only in the worker processes that load this plugin.

The bench tests pass ``imports=("bench_plugin",)``: a worker imports this
module and calls :func:`register` before solving, so these methods exist
there and never in the test process's catalog (where other tests iterate
over every method).
"""

from __future__ import annotations

import os
import time

from memopt.catalog import entry
from memopt.core.method import MethodOutput
from memopt.core.plan import Plan
from memopt.core.status import Status
from memopt.heuristics.orders import given_order


def _only_in_bench_tests(req):
    # belt and braces: should this module ever be imported elsewhere, its methods refuse every request
    return None if os.environ.get("MEMOPT_TEST_PLUGIN") == "1" else "a test method of tests/bench_plugin.py"


def run_probe(req, ctx):
    """The given order, reporting where it ran and with how many threads."""
    plan = Plan.from_order(req.instance, given_order(req.instance))
    return MethodOutput(plan, Status.FEASIBLE, stats={"pid": os.getpid(), "threads": ctx.threads, "seed": ctx.seed})


def run_stuck(req, ctx):
    """Ignores its time limit: the bench must kill it."""
    time.sleep(120)
    return MethodOutput()


def run_crash(req, ctx):
    """Raises, as a buggy method would."""
    raise ValueError("boom")


def register(catalog) -> None:
    for name, fn in (("test-probe", run_probe), ("test-stuck", run_stuck), ("test-crash", run_crash)):
        if name not in catalog:
            catalog.register(entry(name, fn, objectives=("peak", "time"), check=_only_in_bench_tests))
