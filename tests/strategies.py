"""Hypothesis strategies: small random instances of every shape and form.

Shared by every test module. ``instances()`` draws a random DAG and writes
its data in the tensor form (one output per task, read by several), the
buffer form (one datum per edge) or the general form (several outputs per
task, arbitrary consumer sets), with optional workspaces and results.
"""

from __future__ import annotations

from hypothesis import strategies as st

from memopt import Datum, Instance, Machine, Task

FORMS = ("tensor", "buffer", "general")


@st.composite
def dags(draw, min_tasks: int = 1, max_tasks: int = 7, max_in: int = 3):
    """A random DAG as (n, arcs): arcs u->v with u < v, then randomly relabelled order."""
    n = draw(st.integers(min_tasks, max_tasks))
    arcs = set()
    for v in range(1, n):
        k = draw(st.integers(0, min(max_in, v)))
        preds = draw(st.lists(st.integers(0, v - 1), min_size=k, max_size=k, unique=True))
        arcs.update((u, v) for u in preds)
    return n, sorted(arcs)


@st.composite
def instances(draw, min_tasks: int = 1, max_tasks: int = 7, form: str | None = None,
              max_size: int = 9, max_time: int = 5, workspace: bool = True,
              no_recompute: bool = False, shuffle: bool = True) -> Instance:
    """A random valid instance; ``form`` None draws one of tensor/buffer/general."""
    n, arcs = draw(dags(min_tasks, max_tasks))
    form = form or draw(st.sampled_from(FORMS))
    sizes = st.integers(0, max_size)
    # listed order: a random permutation, so "the listed order" is not always topological
    perm = list(range(n))
    if shuffle:
        perm = draw(st.permutations(range(n)))
    ids = [f"t{i}" for i in range(n)]
    tasks = []
    for i in perm:
        ws = draw(st.integers(0, 3)) if workspace and draw(st.booleans()) else 0
        rc = not (no_recompute and draw(st.integers(0, 4)) == 0)
        tasks.append(Task(ids[i], draw(st.integers(0, max_time)), ws, rc))
    succ: dict[int, list[int]] = {i: [] for i in range(n)}
    for u, v in arcs:
        succ[u].append(v)
    data: list[Datum] = []
    if form == "tensor":
        for u in range(n):
            data.append(Datum(ids[u], ids[u], tuple(ids[v] for v in succ[u]), draw(sizes)))
    elif form == "buffer":
        for u, v in arcs:
            data.append(Datum(f"{ids[u]}->{ids[v]}", ids[u], (ids[v],), draw(sizes)))
        # a sink without outgoing edge has no datum at all in buffer form
    else:
        for u in range(n):
            outs = draw(st.integers(1 if not succ[u] else 1, 2))
            remaining = list(succ[u])
            for k in range(outs):
                if k == outs - 1:
                    cons = remaining
                else:
                    cons = (draw(st.lists(st.sampled_from(succ[u]), unique=True, max_size=len(succ[u])))
                            if succ[u] else [])
                    remaining = [v for v in remaining if v not in cons] or ([] if not cons else [])
                data.append(Datum(f"{ids[u]}.{k}", ids[u], tuple(ids[v] for v in cons), draw(sizes)))
            # every arc must be carried by some datum
            carried = {c for d in data if d.producer == ids[u] for c in d.consumers}
            for v in succ[u]:
                if ids[v] not in carried:
                    data.append(Datum(f"{ids[u]}.x{v}", ids[u], (ids[v],), draw(sizes)))
    return Instance(tasks, data, Machine(), name=f"rand-{form}-{n}")
