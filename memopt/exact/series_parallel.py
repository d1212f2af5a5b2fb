"""The optimal peak of a series-parallel task graph, in O(n log n).

Kayaaslan, Lambert, Marchal & Uçar, "Scheduling series-parallel task graphs
to minimize peak memory", TCS 707 (2018), solve the problem on two-terminal
series-parallel graphs with weighted vertices and edges (our buffer form).
When every task has a fixed memory effect (:mod:`memopt.graph.release`)
the peak is a maximum cumulative cost, and the problem under series-parallel
precedence is solved by the block-chain method of Abdel-Wahab & Kameda
(1978), the same as Liu's (1987) for trees:

- a single task is the chain of one block (p(v), i(v));
- a series composition concatenates the chains and normalises them (glues
  adjacent blocks that are out of key order, :mod:`memopt.graph.blocks`);
- a parallel composition merges the branches' chains by key.

The order of the final chain is optimal. Complexity O(n log n) (the
decomposition is O(n + e), each merge is a sorted merge).

**Exactness condition in our data model.** Every datum of positive size
must have a release task fixed by the precedence (one consumer — always true
in buffer form —, or a consumer that runs after all the others). A tensor
read by several parallel branches is freed by whichever branch reads it
last, which makes the memory effect of its readers depend on the order: the
method refuses such instances (``auto`` handles them with the exact search).
Results (data without consumer) and workspaces are allowed.
"""

from __future__ import annotations

from memopt.core.errors import MemoptError
from memopt.core.instance import Instance
from memopt.core.method import Context, MethodOutput
from memopt.core.request import Request
from memopt.exact.output import exact_output
from memopt.graph.blocks import Block, flatten
from memopt.graph.release import ambiguous_data, fixed_effects, not_fixed_reason, release_tasks
from memopt.graph.series_parallel import SINK, SOURCE, expr_chain, is_series_parallel, sp_obstruction, tt_reduce


def series_parallel_check(inst: Instance) -> str | None:
    """Why :func:`series_parallel_schedule` does not apply to ``inst`` (None: it does)."""
    if inst.n == 0:
        return None
    arcs = tt_reduce(range(inst.n), inst.succs.__getitem__)
    if not is_series_parallel(arcs):
        return f"{inst.where}: the task graph is not series-parallel ({sp_obstruction(arcs)})"
    amb = ambiguous_data(inst, release_tasks(inst))
    if amb:
        return not_fixed_reason(inst, amb)
    return None


def series_parallel_schedule(inst: Instance) -> list[int]:
    """An order of minimum peak for a series-parallel instance with fixed memory effects.

    Raises :class:`MemoptError` when the graph is not series-parallel or a
    datum's release depends on the order.
    """
    if inst.n == 0:
        return []
    expr = sp_expression(inst)
    if expr is None:
        arcs = tt_reduce(range(inst.n), inst.succs.__getitem__)
        raise MemoptError(f"{inst.where}: the task graph is not series-parallel ({sp_obstruction(arcs)})")
    p, i = fixed_effects(inst)
    return chain_order(sp_chain(expr, p, i))


def sp_expression(inst: Instance):
    """The series-parallel expression of the task graph (virtual terminals), or None."""
    arcs = tt_reduce(range(inst.n), inst.succs.__getitem__)
    return arcs[(SOURCE, SINK)] if is_series_parallel(arcs) else None


def sp_chain(expr, p: list[int], i: list[int]) -> list[Block]:
    """The optimal block chain of a series-parallel expression for the effects (p, i)."""
    return expr_chain(expr, lambda v: Block(p[v], i[v], v))


def chain_order(chain: list[Block]) -> list[int]:
    order: list[int] = []
    for b in chain:
        order.extend(flatten(b.seq))
    return order


def check_series_parallel(req: Request) -> str | None:
    return series_parallel_check(req.instance)


def run_series_parallel(req: Request, ctx: Context) -> MethodOutput:
    """Optimal order of a series-parallel graph (Kayaaslan et al. 2018), O(n log n)."""
    return exact_output(req, ctx, series_parallel_schedule(req.instance))


__all__ = ["chain_order", "check_series_parallel", "run_series_parallel", "series_parallel_check",
           "series_parallel_schedule", "sp_chain", "sp_expression"]
