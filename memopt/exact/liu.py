"""Liu's algorithm: the optimal peak of a tree (or forest) of tasks.

J. W. H. Liu, "An application of generalized tree pebbling to sparse matrix
factorization", SIAM J. Algebraic Discrete Methods 8(3), 1987. Each subtree
is summarised by its optimal traversal cut into *hill-valley segments*; the
segments of sibling subtrees are interleaved by decreasing hill − valley.
Here the segments are the blocks of a normal chain
(:mod:`memopt.graph.blocks`), which also handles segments that free
memory (impact <= 0), so the same code serves

- **in-trees** (every task feeds at most one task, as in multifrontal
  factorisation): chain(v) = normalise(merge(children's chains) + [v]);
- **out-trees** (every task is fed by at most one task):
  chain(v) = normalise([v] + merge(children's chains)).

A forest is the merge of its trees' chains. O(n log n).

**Exactness condition in our data model.** In an in-forest every datum has
at most one consumer, so every task has a fixed memory effect in every form.
In an out-forest a tensor read by several children is freed by whichever
child runs last: the method refuses such instances (buffer form, or one
datum per child, is fine).
"""

from __future__ import annotations

from memopt.core.errors import MemoptError
from memopt.core.instance import Instance
from memopt.core.method import Context, MethodOutput
from memopt.core.request import Request
from memopt.exact.output import exact_output
from memopt.graph.blocks import Block, flatten, merge_chains, push_normalized
from memopt.graph.release import ambiguous_data, fixed_effects, not_fixed_reason, release_tasks


def tree_kind(inst: Instance) -> str | None:
    """``"in"`` (every task has <= 1 successor), ``"out"`` (<= 1 predecessor) or None."""
    if all(len(s) <= 1 for s in inst.succs):
        return "in"
    if all(len(p) <= 1 for p in inst.preds):
        return "out"
    return None


def liu_check(inst: Instance) -> str | None:
    """Why :func:`liu_tree_schedule` does not apply (None: it does)."""
    kind = tree_kind(inst)
    if kind is None:
        v = next(v for v in range(inst.n) if len(inst.succs[v]) > 1)
        w = next(v for v in range(inst.n) if len(inst.preds[v]) > 1)
        return (f"{inst.where}: the task graph is not a forest: task {inst.tasks[v].id!r} has "
                f"{len(inst.succs[v])} successors and task {inst.tasks[w].id!r} has {len(inst.preds[w])} predecessors")
    amb = ambiguous_data(inst, release_tasks(inst))
    if amb:
        return not_fixed_reason(inst, amb)
    return None


def liu_tree_schedule(inst: Instance) -> list[int]:
    """An order of minimum peak for an in-forest or out-forest with fixed memory effects.

    Raises :class:`MemoptError` when the instance is not such a forest.
    """
    why = liu_check(inst)
    if why:
        raise MemoptError(why)
    p, i = fixed_effects(inst)
    final = forest_chain(inst, p, i)
    order: list[int] = []
    for b in final:
        order.extend(flatten(b.seq))
    return order


def forest_chain(inst: Instance, p: list[int], i: list[int]) -> list[Block]:
    """The optimal block chain of an in- or out-forest for the effects (p, i)."""
    kind = tree_kind(inst)
    chains: dict[int, list[Block]] = {}
    topo = inst.topological_order
    if kind == "in":
        for v in topo:  # children (predecessors) first
            merged = merge_chains([chains.pop(c) for c in inst.preds[v]])
            push_normalized(merged, Block(p[v], i[v], v))
            chains[v] = merged
    else:
        for v in reversed(topo):  # children (successors) first
            merged = merge_chains([chains.pop(c) for c in inst.succs[v]])
            chain = [Block(p[v], i[v], v)]
            for b in merged:
                push_normalized(chain, b)
            chains[v] = chain
    return merge_chains(list(chains.values()))


def check_liu(req: Request) -> str | None:
    return liu_check(req.instance)


def run_liu(req: Request, ctx: Context) -> MethodOutput:
    """Liu's optimal tree traversal (in-forests, out-forests), O(n log n)."""
    return exact_output(req, ctx, liu_tree_schedule(req.instance))


__all__ = ["check_liu", "forest_chain", "liu_check", "liu_tree_schedule", "run_liu", "tree_kind"]
