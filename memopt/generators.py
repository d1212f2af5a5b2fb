"""Task-graph generators: chains, random trees, series-parallel and layered graphs.

Every generator is a pure function of its arguments returning an
:class:`~memopt.core.instance.Instance`: the same arguments give the same instance
on every run and platform. Randomness comes only from
:class:`random.Random` seeded with ``seed`` (structure) and with
``"memopt-costs-<seed>"`` (times, sizes, workspaces, data layout), through
its integer and uniform draws and IEEE-exact arithmetic (no log/exp), so
changing a cost option never changes the graph's shape.

Common options (see ``docs/generators.md``):

``sizes=(lo, hi)``, ``times=(lo, hi)``
    Data sizes and task times, uniform integers in [lo, hi]
    (defaults: (1, 10); the layered generator has its own defaults).
``workspace=(lo, hi)`` or ``None``
    Per-task workspace, uniform integers in [lo, hi] (default: none).
``form``
    How the arcs become data (SPEC §1): ``tensor`` (each task has one output
    read by all its successors; sinks' outputs are results), ``buffer``
    (each arc u->v is its own datum ``u->v``; sinks have no output) or
    ``general`` (each task has 1 to 3 outputs, its successors split at
    random among them; sinks have one result).

Tasks are named ``v0 .. v{n-1}`` and listed in a topological order.
The instance's ``meta.generator`` records the kind and every parameter.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.files import Flow
from memopt.core.instance import Datum, Instance, Task

FORMS = ("tensor", "buffer", "general")
Range = tuple[int, int]


# ---------------------------------------------------------------- checking
def _check_n(n: Any, least: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < least:
        raise MemoptError(f"n must be an integer >= {least}, got {n!r}")
    return n


def _check_range(what: str, r: Any, allow_none: bool = False) -> Range | None:
    if r is None and allow_none:
        return None
    try:
        lo, hi = r
    except (TypeError, ValueError):
        raise MemoptError(f"{what} must be a pair (lo, hi) of integers, got {r!r}") from None
    if any(isinstance(x, bool) or not isinstance(x, int) for x in (lo, hi)) or lo < 0 or hi < lo:
        raise MemoptError(f"{what} must be integers with 0 <= lo <= hi, got {r!r}")
    return int(lo), int(hi)


def _check_prob(what: str, p: Any, lo_open: bool = False, hi_open: bool = False) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or math.isnan(p):
        raise MemoptError(f"{what} must be a number, got {p!r}")
    if p < 0 or p > 1 or (lo_open and p == 0) or (hi_open and p == 1):
        lo, hi = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise MemoptError(f"{what} must be in {lo}0, 1{hi}, got {p!r}")
    return float(p)


def _check_form(form: str) -> str:
    if form not in FORMS:
        raise MemoptError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    return form


# ------------------------------------------------------------------ build
def _cost_rng(seed: int) -> random.Random:
    # a separate stream for costs, so cost options never change the structure
    return random.Random(f"memopt-costs-{seed}")


def build(
    n: int,
    arcs: Sequence[tuple[int, int]],
    *,
    name: str,
    seed: int,
    sizes: Range | Callable[[random.Random], int],
    times: Range | Callable[[random.Random], int],
    workspace: Range | None,
    form: str,
    meta: dict[str, Any],
    zero_time: Sequence[int] = (),
) -> Instance:
    """An instance on tasks ``v0..v{n-1}`` with the given arcs (u < v), costs drawn from ``seed``.

    Shared by every generator. ``sizes``/``times`` are (lo, hi) ranges or
    functions of the cost RNG; ``zero_time`` lists tasks whose time is 0.
    O(n + arcs).
    """
    rng = _cost_rng(seed)
    draw_size = sizes if callable(sizes) else (lambda r, lo=sizes[0], hi=sizes[1]: r.randint(lo, hi))
    draw_time = times if callable(times) else (lambda r, lo=times[0], hi=times[1]: r.randint(lo, hi))
    ids = [f"v{i}" for i in range(n)]
    succ: list[list[int]] = [[] for _ in range(n)]
    for u, v in arcs:
        succ[u].append(v)
    zt = set(zero_time)
    time = [0 if i in zt else draw_time(rng) for i in range(n)]
    ws = [rng.randint(*workspace) for _ in range(n)] if workspace else [0] * n
    tasks = [Task(ids[i], time[i], ws[i]) for i in range(n)]
    data: list[Datum] = []
    if form == "tensor":
        for u in range(n):
            data.append(Datum(ids[u], ids[u], tuple(ids[v] for v in sorted(succ[u])), draw_size(rng)))
    elif form == "buffer":
        for u in range(n):
            for v in sorted(succ[u]):
                data.append(Datum(f"{ids[u]}->{ids[v]}", ids[u], (ids[v],), draw_size(rng)))
    else:  # general: 1..3 outputs per task, successors split among them
        for u in range(n):
            ss = sorted(succ[u])
            k = rng.randint(1, min(3, len(ss))) if ss else 1
            rng.shuffle(ss)
            cuts = sorted(rng.sample(range(1, len(ss)), k - 1)) if k > 1 else []
            bounds = [0] + cuts + [len(ss)]
            for j in range(k):
                cons = sorted(ss[bounds[j]:bounds[j + 1]])
                data.append(Datum(f"{ids[u]}.{j}", ids[u], tuple(ids[v] for v in cons), draw_size(rng)))
    return Instance(tasks, data, name=name, meta={"generator": meta}, where=f"<generated {meta['kind']}>")


def _name(default: str, name: str | None) -> str:
    return name if name is not None else default


# -------------------------------------------------------------- generators
def chain(n: int, *, seed: int = 0, sizes: Range = (1, 10), times: Range = (1, 10),
          workspace: Range | None = None, form: str = "tensor", name: str | None = None) -> Instance:
    """The chain v0 -> v1 -> ... -> v{n-1}, with random sizes and times. O(n)."""
    _check_n(n)
    sizes, times = _check_range("sizes", sizes), _check_range("times", times)
    workspace = _check_range("workspace", workspace, allow_none=True)
    _check_form(form)
    meta = {"kind": "chain", "n": n, "seed": seed, "sizes": Flow(sizes), "times": Flow(times), "form": form}
    if workspace:
        meta["workspace"] = Flow(workspace)
    return build(n, [(i, i + 1) for i in range(n - 1)], name=_name(f"chain-n{n}-s{seed}", name), seed=seed,
                 sizes=sizes, times=times, workspace=workspace, form=form, meta=meta)


def _random_tree_parents(n: int, rng: random.Random, max_children: int | None) -> list[int]:
    """parent[i] < i for i >= 1: a random recursive tree, optionally with bounded out-degree.

    Node i attaches to a uniformly random earlier node that has fewer than
    ``max_children`` children. Expected depth O(log n) without the bound. O(n).
    """
    parent = [-1] * n
    open_nodes = [0] if n else []  # nodes that may still take a child
    children = [0] * n
    for i in range(1, n):
        k = rng.randrange(len(open_nodes))
        p = open_nodes[k]
        parent[i] = p
        children[p] += 1
        if max_children is not None and children[p] >= max_children:
            open_nodes[k] = open_nodes[-1]
            open_nodes.pop()
        open_nodes.append(i)
    return parent


def _tree(kind: str, n: int, seed: int, max_children: int | None, sizes: Range, times: Range,
          workspace: Range | None, form: str, name: str | None) -> Instance:
    _check_n(n)
    if max_children is not None and (isinstance(max_children, bool) or not isinstance(max_children, int)
                                     or max_children < 1):
        raise MemoptError(f"max_children must be an integer >= 1, got {max_children!r}")
    sizes, times = _check_range("sizes", sizes), _check_range("times", times)
    workspace = _check_range("workspace", workspace, allow_none=True)
    _check_form(form)
    parent = _random_tree_parents(n, random.Random(seed), max_children)
    if kind == "out-tree":  # root v0, arcs parent -> child
        arcs = [(parent[i], i) for i in range(1, n)]
    else:  # in-tree: renumber i -> n-1-i so arcs child -> parent go up in index; root v{n-1}
        arcs = [(n - 1 - i, n - 1 - parent[i]) for i in range(1, n)]
    meta = {"kind": kind, "n": n, "seed": seed, "sizes": Flow(sizes), "times": Flow(times), "form": form}
    if max_children is not None:
        meta["max_children"] = max_children
    if workspace:
        meta["workspace"] = Flow(workspace)
    return build(n, arcs, name=_name(f"{kind}-n{n}-s{seed}", name), seed=seed, sizes=sizes, times=times,
                 workspace=workspace, form=form, meta=meta)


def in_tree(n: int, *, seed: int = 0, max_children: int | None = None, sizes: Range = (1, 10),
            times: Range = (1, 10), workspace: Range | None = None, form: str = "tensor",
            name: str | None = None) -> Instance:
    """A random in-tree (every task feeds its parent; the root v{n-1} is the only sink).

    The tree is a random recursive tree (each node attaches to a uniformly
    random earlier node with fewer than ``max_children`` children), with
    arcs towards the root: the task graphs of Liu (1987), "An application of
    generalized tree pebbling to sparse matrix factorization". O(n).
    """
    return _tree("in-tree", n, seed, max_children, sizes, times, workspace, form, name)


def out_tree(n: int, *, seed: int = 0, max_children: int | None = None, sizes: Range = (1, 10),
             times: Range = (1, 10), workspace: Range | None = None, form: str = "tensor",
             name: str | None = None) -> Instance:
    """A random out-tree (the root v0 is the only source; every other task has one parent).

    Same random recursive tree as :func:`in_tree`, arcs away from the root.
    In tensor form a task's output is read by all its children. O(n).
    """
    return _tree("out-tree", n, seed, max_children, sizes, times, workspace, form, name)


def series_parallel_arcs(n: int, rng: random.Random, p_series: float = 0.5) -> list[tuple[int, int]]:
    """Arcs of a random two-terminal series-parallel DAG on n nodes, numbered topologically.

    Start from one arc s -> t; then n-2 times pick a uniformly random arc
    u -> v and, with probability ``p_series``, replace it by the series
    composition u -> w -> v, else compose it in parallel with the path
    u -> w -> v (w a new node). Both are SP compositions, so the result is a
    simple two-terminal SP DAG (Valdes, Tarjan & Lawler 1982) with source 0
    and sink n-1. Node w is inserted right after u in a linked list, which
    keeps a topological order at O(1) per step: O(n) in total.
    """
    if n == 1:
        return []
    arcs: list[tuple[int, int]] = [(0, 1)]
    nxt = {0: 1, 1: -1}  # linked list of a topological order
    for w in range(2, n):
        k = rng.randrange(len(arcs))
        u, v = arcs[k]
        if rng.random() < p_series:
            arcs[k] = (u, w)
        else:
            arcs.append((u, w))
        arcs.append((w, v))
        nxt[w] = nxt[u]
        nxt[u] = w
    rank = {}
    x, r = 0, 0
    while x != -1:
        rank[x] = r
        r += 1
        x = nxt[x]
    return sorted((rank[u], rank[v]) for u, v in arcs)


def random_series_parallel(n: int, *, seed: int = 0, p_series: float = 0.5, sizes: Range = (1, 10),
                           times: Range = (1, 10), workspace: Range | None = None, form: str = "tensor",
                           name: str | None = None) -> Instance:
    """A random two-terminal series-parallel task graph (see :func:`series_parallel_arcs`).

    ``p_series`` near 1 gives long chains, near 0 wide fork-joins. The
    source is v0, the sink v{n-1}. O(n log n) (the arcs are sorted); 50,000
    tasks take well under a second.
    """
    _check_n(n)
    p_series = _check_prob("p_series", p_series)
    sizes, times = _check_range("sizes", sizes), _check_range("times", times)
    workspace = _check_range("workspace", workspace, allow_none=True)
    _check_form(form)
    arcs = series_parallel_arcs(n, random.Random(seed), p_series)
    meta = {"kind": "series-parallel", "n": n, "seed": seed, "p_series": p_series, "sizes": Flow(sizes),
            "times": Flow(times), "form": form}
    if workspace:
        meta["workspace"] = Flow(workspace)
    return build(n, arcs, name=_name(f"sp-n{n}-s{seed}", name), seed=seed, sizes=sizes, times=times,
                 workspace=workspace, form=form, meta=meta)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def layered_structure(n: int, rng: random.Random, width: float, nlv: float, edge_density: float,
                      skip_density: float) -> tuple[list[int], list[tuple[int, int]]]:
    """Layer sizes and arcs of a random layered graph (Gagrani et al. 2022, Appendix A).

    1. Layers: a source layer of one node, then layers of N_l nodes drawn
       uniformly in [ceil(n/L (1-nlv)), floor(n/L (1+nlv))] with
       L = ceil(sqrt(n (1/width - 1))), until n-2 nodes are placed (the last
       one truncated), then a sink layer of one node.
    2. Consecutive layers l, l+1 get E = round(ed N_l N_{l+1} + (1-ed) max)
       arcs: the E arcs are spread as evenly as possible over the nodes of
       the larger layer (the extra ones at random); node i of that layer
       connects to a window of consecutive nodes of the smaller layer
       centred at position ceil(i (N_small-1)/(N_large-1)). Every node but
       the source has a predecessor and every node but the sink a successor.
    3. Skip connections: ceil(E_total scd/(1-scd)) times, a random layer
       ls (not the sink's), a layer lt >= ls+2 (not the sink's), positions
       xs ~ U(0,1), xt = min(xs + 0.2 U(0,1), 0.999), and the arc between
       the nodes at those relative positions (duplicates collapse).

    Nodes are numbered layer by layer. O(n + arcs).
    """
    if n == 1:
        return [1], []
    if n == 2:
        return [1, 1], [(0, 1)]
    L = math.ceil(math.sqrt(n * (1 / width - 1)))
    lo = max(1, math.ceil(n / L * (1 - nlv)))
    hi = max(lo, math.floor(n / L * (1 + nlv)))
    sizes = [1]
    placed = 0
    while placed < n - 2:
        s = min(rng.randint(lo, hi), n - 2 - placed)
        sizes.append(s)
        placed += s
    sizes.append(1)
    start = [0]
    for s in sizes:
        start.append(start[-1] + s)
    arcs: set[tuple[int, int]] = set()
    for layer in range(len(sizes) - 1):
        na, nb = sizes[layer], sizes[layer + 1]
        e = _round_half_up(edge_density * na * nb + (1 - edge_density) * max(na, nb))
        e = max(max(na, nb), min(e, na * nb))
        big_is_a = na >= nb
        nbig, nsmall = (na, nb) if big_is_a else (nb, na)
        cnt = [e // nbig] * nbig
        for i in rng.sample(range(nbig), e % nbig):
            cnt[i] += 1
        for i in range(nbig):
            c = -(-i * (nsmall - 1) // (nbig - 1)) if nbig > 1 else 0
            k = cnt[i]
            s0 = min(max(c - (k - 1) // 2, 0), nsmall - k)
            for j in range(s0, s0 + k):
                if big_is_a:
                    arcs.add((start[layer] + i, start[layer + 1] + j))
                else:
                    arcs.add((start[layer] + j, start[layer + 1] + i))
    lx = len(sizes) - 1  # layers other than the sink's
    if lx >= 3 and skip_density > 0:
        extra = math.ceil(len(arcs) * skip_density / (1 - skip_density))
        for _ in range(extra):
            ls = rng.randint(0, lx - 3)
            lt = rng.randint(ls + 2, lx - 1)
            xs = rng.random()
            xt = min(xs + 0.2 * rng.random(), 0.999)
            u = start[ls] + math.floor(xs * sizes[ls])
            v = start[lt] + math.floor(xt * sizes[lt])
            arcs.add((u, v))
    return sizes, sorted(arcs)


def layered_size(rng: random.Random) -> int:
    """Default output size of the layered generator: 10 · U{1..40} · U{1..20}.

    Calibrated on the random layered graphs published with Moccasin (mean
    ≈ 2040, median ≈ 1430, max 8180 there; mean 2152, median 1620, max 8000
    here). The appendix's exact cost distribution is not reproduced.
    """
    return 10 * rng.randint(1, 40) * rng.randint(1, 20)


def random_layered(n: int, *, seed: int = 0, width: float | None = None, nlv: float = 0.75,
                   edge_density: float = 0.2, skip_density: float = 0.14,
                   sizes: Range | None = None, times: Range | None = None, workspace: Range | None = None,
                   form: str = "tensor", name: str | None = None) -> Instance:
    """A random layered graph after Gagrani et al., "Neural Topological Ordering
    for Computation Graphs" (NeurIPS 2022), Appendix A (see :func:`layered_structure`).

    ``width`` in (0, 1) sets the number of layers (default: drawn uniformly
    in [0.25, 0.5] from ``seed``); ``nlv`` the variability of the layer
    sizes; ``edge_density`` the arcs between consecutive layers;
    ``skip_density`` the share of skip connections. The defaults are those of
    the graphs Moccasin published (``random_layered_n100_w0.27_nlv0.75_ed0.2_scd0.14``).
    Default costs: the source v0 and sink v{n-1} take time 0 (the network's
    input and output), other times are uniform in [1, 1000], sizes follow
    :func:`layered_size`. ``meta.generator.layer_sizes`` lists the layers
    (tasks are numbered layer by layer). O(n + arcs).
    """
    _check_n(n)
    rng = random.Random(seed)
    if width is None:
        width = rng.uniform(0.25, 0.5)
    width = _check_prob("width", width, lo_open=True, hi_open=True)
    nlv = _check_prob("nlv", nlv, hi_open=True)
    edge_density = _check_prob("edge_density", edge_density)
    skip_density = _check_prob("skip_density", skip_density, hi_open=True)
    sz = _check_range("sizes", sizes, allow_none=True)
    tm = _check_range("times", times, allow_none=True)
    workspace = _check_range("workspace", workspace, allow_none=True)
    _check_form(form)
    layer_sizes, arcs = layered_structure(n, rng, width, nlv, edge_density, skip_density)
    meta = {"kind": "layered", "n": n, "seed": seed, "width": round(width, 6), "nlv": nlv,
            "edge_density": edge_density, "skip_density": skip_density, "form": form}
    if sz:
        meta["sizes"] = Flow(sz)
    if tm:
        meta["times"] = Flow(tm)
    if workspace:
        meta["workspace"] = Flow(workspace)
    meta["layer_sizes"] = Flow(layer_sizes)  # one line in YAML
    default = f"random_layered_n{n}_w{width:.2f}_nlv{nlv:g}_ed{edge_density:g}_scd{skip_density:g}_s{seed}"
    return build(n, arcs, name=_name(default, name), seed=seed, sizes=sz or layered_size,
                 times=tm or (1, 1000), workspace=workspace, form=form, meta=meta,
                 zero_time=() if tm else (0, n - 1))


def repeated_blocks(n: int, *, seed: int = 0, block_size: int = 8, sizes: Range = (1, 10), times: Range = (1, 10),
                    workspace: Range | None = None, form: str = "tensor", annotate: bool = True,
                    name: str | None = None) -> Instance:
    """A chain of identical blocks, like the layers of a network: ``stem -> block × k -> head``.

    One random block of ``block_size`` tasks is drawn from ``seed`` (its
    arcs and its costs) and repeated ``k = max(1, (n - 2) // block_size)``
    times: task ``b{i}.t0`` reads the previous block's output, every other
    task 1 or 2 of the 3 tasks before it (sometimes the block's input too),
    and the last task also reads the block's input (a residual connection).
    The stem ``in`` (data loading: ``recompute: false``, time 0) feeds the
    first block, the ``head`` reads the last block's output. Every task of
    block ``i`` carries ``group: blocks.{i}`` when ``annotate`` is true (the
    annotation :mod:`memopt.graph.structure` reads); the planted blocks are
    ``meta.generator.blocks``. Tensor form only; tasks are named by block,
    and the instance has 2 + k·``block_size`` tasks — so it is not one of the
    :data:`GENERATORS` (which make exactly n tasks ``v0..v{n-1}`` in every
    form). O(n).
    """
    _check_n(n, 3)
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise MemoptError(f"block_size must be an integer >= 2, got {block_size!r}")
    sizes, times = _check_range("sizes", sizes), _check_range("times", times)
    workspace = _check_range("workspace", workspace, allow_none=True)
    if _check_form(form) != "tensor":
        raise MemoptError("the blocks generator writes the tensor form only")
    rng, crng = random.Random(seed), _cost_rng(seed)
    k = max(1, (n - 2) // block_size)
    # the block: reads[j] = earlier tasks of the block read by task j (-1: the block's input)
    reads: list[list[int]] = [[-1]]
    for j in range(1, block_size):
        near = list(range(max(0, j - 3), j))
        r = rng.sample(near, min(len(near), rng.randint(1, 2)))
        if j == block_size - 1:
            r = sorted(set(r) | {j - 1, -1})  # the residual connection
        elif rng.random() < 0.2:
            r.append(-1)
        reads.append(sorted(set(r)))
    for j in range(block_size - 1):  # every task but the last is read inside the block (no dead ends)
        if not any(j in reads[i] for i in range(j + 1, block_size)):
            reads[j + 1] = sorted(set(reads[j + 1]) | {j})
    cost = [(crng.randint(*times), crng.randint(*sizes), crng.randint(*workspace) if workspace else 0)
            for _ in range(block_size)]
    tasks = [Task("in", 0, 0, False)]
    size = {"in": crng.randint(*sizes)}
    inputs: dict[str, list[str]] = {"in": []}
    prev = "in"
    for i in range(k):
        ids = [f"b{i}.t{j}" for j in range(block_size)]
        for j, tid in enumerate(ids):
            c, s, w = cost[j]
            tasks.append(Task(tid, c, w, True, None, f"blocks.{i}" if annotate else None))
            size[tid] = s
            inputs[tid] = [prev if u < 0 else ids[u] for u in reads[j]]
        prev = ids[-1]
    tasks.append(Task("head", crng.randint(*times), 0, True))
    size["head"] = crng.randint(*sizes)
    inputs["head"] = [prev]
    consumers: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for u in inputs[t.id]:
            consumers[u].append(t.id)
    data = [Datum(t.id, t.id, tuple(consumers[t.id]), size[t.id]) for t in tasks]
    meta = {"kind": "blocks", "n": n, "seed": seed, "block_size": block_size, "blocks": k, "sizes": Flow(sizes),
            "times": Flow(times), "form": form}
    if workspace:
        meta["workspace"] = Flow(workspace)
    return Instance(tasks, data, name=_name(f"blocks-k{k}-b{block_size}-s{seed}", name), meta={"generator": meta},
                    where="<generated blocks>")


GENERATORS: dict[str, Callable[..., Instance]] = {
    "chain": chain,
    "in-tree": in_tree,
    "out-tree": out_tree,
    "series-parallel": random_series_parallel,
    "layered": random_layered,
}

__all__ = ["chain", "in_tree", "out_tree", "random_series_parallel", "random_layered", "repeated_blocks",
           "series_parallel_arcs", "layered_structure", "layered_size", "build", "GENERATORS", "FORMS"]
