"""Baseline orders for the peak objective: the warm starts of everything else.

Each function returns a topological order of task indices. Their pure
schedules (:meth:`memopt.Plan.from_order`) are valid plans; their peaks are
computed with :func:`memopt.core.evaluate.schedule_peak` and checked against the
evaluator in the tests.

- :func:`given_order`: the instance's own order (Kahn's algorithm taking the
  ready task listed first, i.e. the listed order when it is topological);
- :func:`depth_first_order`: always continue with a task just made ready
  (LIFO), finishing a branch before starting the next;
- :func:`reverse_postorder`: the reverse post-order of a depth-first search
  from the sources, the classic topological sort of Tarjan (1976);
- :func:`greedy_min_increase`: repeatedly run the ready task whose run
  increases the resident memory least (outputs minus the inputs it frees).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from memopt.core.evaluate import schedule_peak
from memopt.core.instance import Instance
from memopt.core.method import Context, MethodOutput
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Status


def given_order(inst: Instance) -> list[int]:
    """The instance's own order, made topological if needed. O(n log n + e)."""
    return list(inst.topological_order)


def depth_first_order(inst: Instance) -> list[int]:
    """Depth-first topological order: the most recently readied task runs next.

    Sources start in listed order; the successors readied by a task are taken
    in listed order. O(n + e).
    """
    indeg = [len(p) for p in inst.preds]
    stack = [v for v in range(inst.n) if indeg[v] == 0]
    stack.reverse()
    order: list[int] = []
    succs = inst.succs
    while stack:
        v = stack.pop()
        order.append(v)
        ready = []
        for w in succs[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(w)
        stack.extend(reversed(ready))
    return order


def reverse_postorder(inst: Instance) -> list[int]:
    """Reverse post-order of an iterative depth-first search from the sources.

    For a DAG this is a topological order (Tarjan 1976). O(n + e).
    """
    n = inst.n
    succs = inst.succs
    state = [0] * n  # 0 new, 1 on stack, 2 done
    post: list[int] = []
    for s in reversed([v for v in range(n) if not inst.preds[v]]):
        if state[s]:
            continue
        state[s] = 1
        stack = [(s, 0)]
        while stack:
            v, i = stack[-1]
            sv = succs[v]
            if i < len(sv):
                stack[-1] = (v, i + 1)
                w = sv[i]
                if state[w] == 0:
                    state[w] = 1
                    stack.append((w, 0))
            else:
                stack.pop()
                state[v] = 2
                post.append(v)
    post.reverse()
    return post


def greedy_min_increase(inst: Instance) -> list[int]:
    """Run the ready task with the smallest memory increase first.

    The increase of v is Σ outputs(v) − Σ sizes of the inputs v is the last
    pending consumer of. Ties go to the smaller footprint (outputs +
    workspace), then to the task listed first. O((n + Σ inputs) log n).
    """
    n = inst.n
    size = inst.size
    remaining = [len(c) for c in inst.consumers]
    indeg = [len(p) for p in inst.preds]
    # freed[v]: Σ sizes of inputs of v whose only pending consumer is v
    freed = [0] * n
    for v in range(n):
        freed[v] = sum(size[j] for j in inst.inputs[v] if remaining[j] == 1)
    out = inst.output_size
    ws = inst.workspace
    key = [0] * n
    heap: list[tuple[int, int, int]] = []

    def push(v: int) -> None:
        key[v] = out[v] - freed[v]
        heapq.heappush(heap, (key[v], out[v] + ws[v], v))

    for v in range(n):
        if indeg[v] == 0:
            push(v)
    done = [False] * n
    order: list[int] = []
    consumers = inst.consumers
    while heap:
        k, _, v = heapq.heappop(heap)
        if done[v] or k != key[v]:
            continue  # stale entry
        done[v] = True
        order.append(v)
        for j in inst.inputs[v]:
            remaining[j] -= 1
            if remaining[j] == 1:
                # the last pending consumer now frees j when it runs
                for c in consumers[j]:
                    if not done[c] and c != v:
                        freed[c] += size[j]
                        if indeg[c] == 0:
                            push(c)
                        break
        for w in inst.succs[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                push(w)
    return order


BASELINES: dict[str, Callable[[Instance], list[int]]] = {
    "given": given_order,
    "dfs": depth_first_order,
    "rpo": reverse_postorder,
    "greedy": greedy_min_increase,
}


def baseline_peaks(inst: Instance) -> dict[str, int]:
    """Peak of each baseline order's pure schedule."""
    return {name: schedule_peak(inst, f(inst)) for name, f in BASELINES.items()}


def best_baseline(inst: Instance) -> tuple[list[int], int, str]:
    """The baseline order with the smallest peak: ``(order, peak, name)``.

    Computed once per instance (the pipeline, the warm starts and ``auto`` all ask; a second at 50,000
    tasks); each call gets its own copy of the order.
    """
    order, peak, name = inst.memo("best_baseline", lambda: _best_baseline(inst))
    return list(order), peak, name


def _best_baseline(inst: Instance) -> tuple[tuple[int, ...], int, str]:
    best: tuple[tuple[int, ...], int, str] | None = None
    for name, f in BASELINES.items():
        order = f(inst)
        p = schedule_peak(inst, order)
        if best is None or p < best[1]:
            best = (tuple(order), p, name)
    assert best is not None
    return best


# ------------------------------------------------------------------ methods
def order_method(name: str, order_fn: Callable[[Instance], list[int]]) -> Callable[[Request, Context], MethodOutput]:
    """The catalog method of one baseline order: its pure schedule, when it fits the budget."""

    def run(req: Request, ctx: Context) -> MethodOutput:
        inst = req.instance
        order = order_fn(inst)
        peak = schedule_peak(inst, order)
        if req.budget is not None and peak > req.budget:
            # a pure schedule is the only plan these methods make
            return MethodOutput(message=f"the {name} order's peak {peak} exceeds the budget {req.budget}")
        return MethodOutput(Plan.from_order(inst, order), Status.FEASIBLE)

    run.__name__ = f"run_{name}"
    run.__doc__ = BASELINE_DESCRIPTIONS[name]
    return run


BASELINE_DESCRIPTIONS = {
    "given": "the instance's own order (made topological)",
    "dfs": "depth-first order (most recently readied task first)",
    "rpo": "reverse post-order of a depth-first search",
    "greedy": "greedy: ready task with the smallest memory increase",
}


def run_baseline(req: Request, ctx: Context) -> MethodOutput:
    """The best of the baseline orders (given, dfs, rpo, greedy)."""
    order, peak, name = best_baseline(req.instance)
    ctx.stats["baseline"] = name
    if req.budget is not None and peak > req.budget:
        return MethodOutput(message=f"the best baseline peak {peak} exceeds the budget {req.budget}")
    return MethodOutput(Plan.from_order(req.instance, order), Status.FEASIBLE)


__all__ = [
    "BASELINES", "BASELINE_DESCRIPTIONS", "baseline_peaks", "best_baseline", "depth_first_order", "given_order",
    "greedy_min_increase", "order_method", "reverse_postorder", "run_baseline",
]
