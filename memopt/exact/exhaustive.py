"""Exhaustive search over every topological order: the reference of the tests.

Deliberately naive and independent of the other exact methods: it lists the
topological orders one by one and asks :func:`memopt.core.evaluate.schedule_peak`
for each peak. O(#orders · (n + Σ inputs)); refuses more than
``MAX_TASKS`` tasks.
"""

from __future__ import annotations

from collections.abc import Iterator

from memopt.core.evaluate import schedule_peak
from memopt.core.instance import Instance
from memopt.core.method import Context, MethodOutput
from memopt.core.request import Request
from memopt.exact.output import exact_output

MAX_TASKS = 10


def topological_orders(inst: Instance) -> Iterator[list[int]]:
    """Every topological order of the task graph (backtracking)."""
    n = inst.n
    indeg = [len(p) for p in inst.preds]
    order: list[int] = []
    used = [False] * n

    def rec() -> Iterator[list[int]]:
        if len(order) == n:
            yield list(order)
            return
        for v in range(n):
            if not used[v] and indeg[v] == 0:
                used[v] = True
                order.append(v)
                for w in inst.succs[v]:
                    indeg[w] -= 1
                yield from rec()
                for w in inst.succs[v]:
                    indeg[w] += 1
                order.pop()
                used[v] = False

    yield from rec()


def exhaustive_peak(inst: Instance) -> tuple[int, list[int]]:
    """The minimum peak over all topological orders, and an order attaining it."""
    best: tuple[int, list[int]] | None = None
    for order in topological_orders(inst):
        p = schedule_peak(inst, order)
        if best is None or p < best[0]:
            best = (p, order)
    assert best is not None
    return best


def check_exhaustive(req: Request) -> str | None:
    if req.instance.n > MAX_TASKS:
        return (f"method 'exhaustive' enumerates every order: at most {MAX_TASKS} tasks "
                f"(this instance has {req.instance.n})")
    return None


def run_exhaustive(req: Request, ctx: Context) -> MethodOutput:
    """Every topological order (the reference of the tests; at most a dozen tasks)."""
    _, order = exhaustive_peak(req.instance)
    return exact_output(req, ctx, order)


__all__ = ["MAX_TASKS", "check_exhaustive", "exhaustive_peak", "run_exhaustive", "topological_orders"]
