"""memopt: run a task graph inside a memory budget.

Scheduling, offloading and recomputation, solved with CP-SAT, MILP and exact
combinatorial algorithms, every plan judged by one evaluator (docs/spec.md §2).

>>> import memopt
>>> inst = memopt.load_instance("instances/tiny.yaml")          # doctest: +SKIP
>>> res = memopt.solve(inst, objective="peak", method="auto")   # doctest: +SKIP
>>> res.status, res.value, res.bound                              # doctest: +SKIP

The layers, bottom up: :mod:`memopt.core` (the problem and its answer),
:mod:`memopt.graph` (graph analysis), :mod:`memopt.backends` (solvers),
:mod:`memopt.transforms`, the methods (:mod:`memopt.heuristics`,
:mod:`memopt.exact`, :mod:`memopt.formulations`, :mod:`memopt.strategies`),
:mod:`memopt.catalog`, :mod:`memopt.pipeline` (:func:`solve`), and the
front ends (:mod:`memopt.cli`, :mod:`memopt.bench`).
"""

from memopt.catalog import CATALOG, Catalog, MethodEntry
from memopt.core.errors import InstanceError, MemoptError, PlanFormatError, Problem
from memopt.core.evaluate import Evaluation, Violation, evaluate, schedule_peak
from memopt.core.instance import Datum, Instance, Machine, Task, from_tensors
from memopt.core.instance_file import instance_from_dict, instance_to_dict
from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.plan import Event, Plan
from memopt.core.request import Request
from memopt.core.result import Result, Statistics, load_plan, save_plan
from memopt.core.status import Objective, Status, StopReason
from memopt.io import load_instance, save_instance
from memopt.pipeline import DEFAULT_TIME_LIMIT, make_request, solve, solve_request

__version__ = "0.2.0"


def methods() -> dict[str, MethodEntry]:
    """Every method of the catalog, by name."""
    return CATALOG.entries()


__all__ = [
    "CATALOG", "DEFAULT_TIME_LIMIT", "Catalog", "Context", "Datum", "Evaluation", "Event", "Instance",
    "InstanceError", "Machine", "MemoptError", "MethodEntry", "MethodOutput", "Objective", "Params", "Plan",
    "PlanFormatError", "Problem", "Request", "Result", "Statistics", "Status", "StopReason", "Task", "Violation",
    "evaluate", "from_tensors", "instance_from_dict", "instance_to_dict", "load_instance", "load_plan",
    "make_request", "methods", "option", "save_instance", "save_plan", "schedule_peak", "solve", "solve_request",
]
