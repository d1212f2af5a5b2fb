"""Structure of a network's task graph: the forward/backward turn, narrow cuts and repeated blocks.

Networks are made of repeated blocks (transformer layers, ResNet stages,
U-Net levels). This module finds them, on the forward part of a graph
listed in a topological order π:

- **the turn** (:func:`find_turn`): the position in π of the loss, where
  the backward pass begins — the task named by ``meta.loss`` (the PyTorch
  importer's), else a task ``loss`` (:func:`memopt.training.training_graph`'s),
  else none (the whole graph is "forward");
- **cuts** between consecutive forward positions, from the tasks' ``group``
  annotations (:func:`annotated_cuts`: where the outermost numbered
  module of the path changes, ``h.3.attn`` → block ``h.3``) or from the
  graph alone (:func:`narrow_cuts`): the *crossing* of the cut after
  position p is the total size of the forward data produced at or before p
  and read by a forward task after p; the narrowest cuts (the residual
  stream between two layers) are taken first, a minimum-weight
  segmentation with bounded segment lengths fills in where they are too
  far apart;
- **repeat classes** (:func:`wl_hash`): the Weisfeiler–Lehman hash of each
  segment's induced subgraph labelled by op, time, workspace, output sizes
  and boundary inputs (Shervashidze et al., JMLR 2011); equal hashes are
  candidates, :func:`segment_mapping` checks an explicit isomorphism (the
  positional one: traced layers list their ops in the same order);
  :func:`repeat_runs` finds the runs of a repeated period in the sequence
  of classes ("12 × [attn, mlp]").

The hashes, isomorphisms and periods are in :mod:`memopt.graph.repeats`.
Everything is O((n + e) · rounds) except the segmentation, O(L · w) for L
forward positions and segments of at most w positions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from memopt.core.instance import Instance
from memopt.graph.repeats import find_period, label_sequence, repeat_runs, segment_mapping, task_label, wl_hash

_NUMBER = re.compile(r"^\d+$")


# ------------------------------------------------------------------ the order
def lazy_sources(inst: Instance, order: Sequence[int]) -> list[int]:
    """``order`` with every source task (no input) moved right before its first reader.

    Traced training graphs list every parameter (and optimizer state) first;
    placed by their readers they belong to their layer's segment and hold no
    memory before it. A topological order again. O(n + e).
    """
    pos = {v: i for i, v in enumerate(order)}
    before: dict[int, list[int]] = {}
    out: list[int] = []
    for v in order:
        if not inst.preds[v] and inst.succs[v]:
            first = min(inst.succs[v], key=pos.__getitem__)
            before.setdefault(first, []).append(v)
    for v in order:
        if not inst.preds[v] and inst.succs[v]:
            continue
        out.extend(before.get(v, ()))
        out.append(v)
    return out


def prelude(inst: Instance) -> set[int]:
    """Tasks that run once before everything: non-recomputable tasks all of whose predecessors are too
    (parameters, optimizer states, the inputs a tracer makes wait for them)."""
    out: set[int] = set()
    for v in inst.topological_order:
        if not inst.can_recompute[v] and all(u in out for u in inst.preds[v]):
            out.add(v)
    return out


# ------------------------------------------------------------------ the turn
def find_turn(inst: Instance, order: Sequence[int]) -> int:
    """Position in ``order`` of the loss (the first backward task); ``len(order)``: no backward pass known."""
    loss = None
    name = (inst.meta or {}).get("loss")
    if isinstance(name, str):
        if name in inst.task_index:
            loss = inst.task_index[name]
        elif name in inst.datum_index:
            loss = inst.producer[inst.datum_index[name]]
    if loss is None:
        for v, t in enumerate(inst.tasks):
            if (t.id == "loss" or (t.id.startswith("loss.") and t.id[5:].isdigit())
                    or (t.meta and t.meta.get("loss") is True)):
                loss = v
                break
    if loss is None:
        return len(order)
    pos = {v: k for k, v in enumerate(order)}
    return pos.get(loss, len(order))


# ------------------------------------------------------------------- cuts
def crossing_sizes(inst: Instance, order: Sequence[int], length: int) -> list[int]:
    """``c[p]`` (0 ≤ p < length − 1): the size of the data made at or before p and read in (p, length).

    O(length + Σ consumers) with a difference array.
    """
    pos = {v: k for k, v in enumerate(order)}
    diff = [0] * (length + 1)
    for j in range(inst.m):
        p = pos.get(inst.producer[j], length)  # (data of tasks outside ``order`` are not counted)
        if p >= length:
            continue
        last = max((pos[c] for c in inst.consumers[j] if pos.get(c, length) < length), default=-1)
        if last > p:
            diff[p] += inst.size[j]
            diff[last] -= inst.size[j]
    out, run = [], 0
    for p in range(length - 1):
        run += diff[p]
        out.append(run)
    return out


def group_key(path: str | None) -> str | None:
    """The outermost numbered module of a hierarchical path: ``h.3.attn.c_attn`` → ``h.3``; none: ``None``."""
    if not path:
        return None
    parts = path.split(".")
    for i, x in enumerate(parts):
        if _NUMBER.match(x):
            return ".".join(parts[: i + 1])
    return None


def annotated_cuts(inst: Instance, order: Sequence[int], length: int) -> list[int] | None:
    """Segment starts where the block (:func:`group_key` of ``group``) of the forward tasks changes.

    Unannotated tasks join the segment before them (the first segment, for
    leading ones). ``None`` when fewer than two blocks are annotated.
    """
    keys = [group_key(inst.tasks[order[p]].group) for p in range(length)]
    seen = {k for k in keys if k is not None}
    if len(seen) < 2:
        return None
    starts = [0]
    cur = None
    for p, k in enumerate(keys):
        if k is None or k == cur:
            continue
        if cur is not None:
            starts.append(p)
        cur = k
    # a block listed in two runs (an op of block 3 traced among block 4's) is still cut where it changes
    return starts


def narrow_cuts(crossing: Sequence[int], length: int, *, min_len: int, max_len: int) -> list[int]:
    """Segment starts (0 first) of a segmentation of ``length`` positions into pieces of ``min_len``..``max_len``.

    The narrowest cuts first: if the cuts of least crossing already give
    pieces within the bounds (a chain of identical layers: one tensor
    between two layers), they are the answer; else a dynamic program picks
    the cuts of least total crossing with every piece within the bounds
    (the last piece may be shorter). O(length · max_len).
    """
    if length <= max_len or length < 2:
        return [0]
    best = min(crossing)
    exact = [p + 1 for p, c in enumerate(crossing) if c == best]
    pieces = [b - a for a, b in zip([0] + exact, exact + [length])]
    if pieces and all(min_len <= x <= max_len for x in pieces[:-1]) and pieces[-1] <= max_len:
        return [0] + exact
    inf = float("inf")
    # f[q]: least total crossing of a segmentation of positions [0, q) ending with a cut at q
    f = [inf] * (length + 1)
    back = [-1] * (length + 1)
    f[0] = 0
    for q in range(1, length + 1):
        w = 0 if q == length else crossing[q - 1]
        lo, hi = max(0, q - max_len), q - (min_len if q < length else 1)
        for a in range(lo, hi + 1):
            if f[a] + w < f[q]:
                f[q], back[q] = f[a] + w, a
    if f[length] == inf:
        return [k * max_len for k in range((length + max_len - 1) // max_len)]
    starts = []
    q = length
    while q > 0:
        q = back[q]
        starts.append(q)
    return sorted(starts)


# ------------------------------------------------------------ detection
@dataclass
class Structure:
    """The forward segments of a graph and their repeat classes.

    ``order``: the topological order π the positions refer to (default: the
    instance's, sources moved to their first reader — :func:`lazy_sources`); ``turn``:
    the position of the loss (``len(order)``: no backward pass known);
    ``starts``: the first position of each forward segment (segment ``i``
    is ``order[starts[i]:starts[i+1]]``, the last one ends at ``turn``);
    ``classes[i]``: the repeat class of segment ``i`` (equal: isomorphic,
    checked); ``runs``: :func:`repeat_runs` of the classes; ``source``:
    ``annotation`` or ``graph``.
    """

    order: tuple[int, ...]
    turn: int
    starts: list[int]
    classes: list[int]
    runs: list[tuple[int, int, int]]
    source: str
    crossing: list[int] = field(default_factory=list, repr=False)

    def segments(self) -> list[list[int]]:
        """The forward segments as lists of task indices."""
        ends = self.starts[1:] + [self.turn]
        return [list(self.order[a:b]) for a, b in zip(self.starts, ends)]

    def describe(self) -> str:
        """In words: ``12 × block of 2 segments (118 tasks), …``."""
        segs = self.segments()
        parts = []
        for start, period, count in self.runs:
            size = sum(len(segs[start + k]) for k in range(period))
            parts.append(f"{count} × block of {period} segment{'s' if period > 1 else ''} ({size} tasks)")
        rest = len(segs) - sum(p * c for _, p, c in self.runs)
        head = f"{len(segs)} forward segments ({self.source})"
        if rest:
            parts.append(f"{rest} other segment{'s' if rest > 1 else ''}")
        return head + (": " + ", ".join(parts) if parts else "")


def detect_structure(inst: Instance, order: Sequence[int] | None = None, *, target_segments: int = 32,
                     max_segment: int | None = None, max_segments: int | None = None,
                     use_annotations: bool = True) -> Structure:
    """Find the turn, the forward segments and their repeat classes (module docstring).

    Cuts: the annotations when at least two blocks are annotated
    (``use_annotations``); else the repeated block of :func:`find_period`,
    cut at the phase of least crossing (and each block cut again at the
    same offsets when it is longer than the target length), the rest by
    :func:`narrow_cuts`. ``target_segments``: about how many segments to
    aim at; ``max_segment``: the most forward positions in one segment
    (default: twice the target length); ``max_segments``: above this many
    segments (default: twice the target), consecutive ones are merged
    (:func:`merge_segments`: a network of 80 layers becomes 27 groups of 3).
    """
    if order is None:
        base = lazy_sources(inst, inst.topological_order)
        pre = prelude(inst)
        order = [v for v in base if v in pre] + [v for v in base if v not in pre]
    order = tuple(order)
    turn = find_turn(inst, order)
    # the prelude (parameters, inputs: tasks that run once, before everything) joins the first segment;
    # the cuts are sought among the computations after it
    p0 = 0
    pre = prelude(inst)
    while p0 < turn and order[p0] in pre:
        p0 += 1
    body = order[p0:turn]
    L = len(body)
    crossing = crossing_sizes(inst, body, L) if L > 1 else []
    target = max(1, -(-L // max(1, target_segments)))
    hi = max_segment or max(2, 2 * target)
    lo = max(1, target // 2)
    starts = annotated_cuts(inst, body, L) if use_annotations else None
    source = "annotation"
    if starts is None:
        source = "graph"
        starts = _graph_cuts(inst, body, L, crossing, target, lo, hi)
    starts = [0] + [p0 + x for x in starts if x > 0]
    classes = _classes(inst, order, starts, turn)
    limit = max_segments if max_segments is not None else 2 * target_segments
    if len(starts) > limit:
        starts = merge_segments(starts, classes, limit)
        classes = _classes(inst, order, starts, turn)
    return Structure(order, turn, starts, classes, repeat_runs(classes), source, list(crossing))


def structure_of(inst: Instance, target_segments: int = 16, use_annotations: bool = True) -> Structure:
    """:func:`detect_structure` with the default order, computed once per instance and arguments."""
    return inst.memo(f"structure:{target_segments}:{use_annotations}",
                     lambda: detect_structure(inst, target_segments=target_segments, use_annotations=use_annotations))


def has_repeated_blocks(inst: Instance, min_count: int = 4, min_cover: float = 0.5) -> bool:
    """A training graph (a loss is known) whose forward segments are mostly a block repeated at least
    ``min_count`` times (transformer layers, ResNet stages) — where the chain DP pays. O(structure)."""
    s = structure_of(inst)
    if s.turn >= len(s.order) or not s.runs:
        return False
    covered = sum(p * c for _, p, c in s.runs if c >= min_count)
    return covered >= min_cover * len(s.starts)


def _classes(inst: Instance, order: Sequence[int], starts: list[int], turn: int) -> list[int]:
    """Repeat classes of the segments: equal WL hashes and an explicit isomorphism."""
    ends = starts[1:] + [turn]
    segs = [list(order[a:b]) for a, b in zip(starts, ends)]
    hashes = [wl_hash(inst, sg) for sg in segs]
    classes: list[int] = []
    reps: list[int] = []  # a representative segment per class
    for i, hs in enumerate(hashes):
        cls = None
        for c, r in enumerate(reps):
            if hashes[r] == hs and segment_mapping(inst, segs[r], segs[i]) is not None:
                cls = c
                break
        if cls is None:
            cls = len(reps)
            reps.append(i)
        classes.append(cls)
    return classes


def merge_segments(starts: list[int], classes: list[int], limit: int) -> list[int]:
    """At most about ``limit`` segments: f consecutive segments merged (f the least that fits), inside each
    run of a repeated block by whole blocks from the run's start, so merged repeats stay identical. O(len)."""
    n = len(starts)
    f = -(-n // max(1, limit))
    keep: list[int] = []
    runs = {start: (period, count) for start, period, count in repeat_runs(classes)}
    i = 0
    loose = 0  # segments since the last kept start outside runs
    while i < n:
        if i in runs:
            period, count = runs[i]
            for b in range(0, count, f):
                keep.append(i + b * period)
            i += period * count
            loose = 0
            continue
        if loose % f == 0:
            keep.append(i)
        loose += 1
        i += 1
    return [starts[j] for j in sorted(set(keep) | {0})]


def _graph_cuts(inst: Instance, order: Sequence[int], L: int, crossing: Sequence[int], target: int, lo: int,
                hi: int) -> list[int]:
    """Segment starts from the graph alone: the repeated block's phase of least crossing, narrow cuts elsewhere."""
    if L <= 1:
        return [0]
    rep = find_period(label_sequence(inst, order, L))
    if rep is None:
        return narrow_cuts(crossing, L, min_len=min(lo, hi), max_len=hi)
    start, P, count = rep
    end = start + count * P
    # the phase of the block: the offset whose cuts cross least over all repeats
    def cross(p: int) -> int:
        return crossing[p - 1] if 0 < p < L else 0

    phase = min(range(P), key=lambda f: (sum(cross(start + f + k * P) for k in range(count)), f))
    first = start + phase
    nblocks = count if first + count * P <= end + phase and first + count * P <= L else count - 1
    if phase and first + nblocks * P > end:
        nblocks -= 1
    if nblocks < 2:
        return narrow_cuts(crossing, L, min_len=min(lo, hi), max_len=hi)
    last = first + nblocks * P
    # inside a block: the same offsets in every repeat (the repeats stay identical)
    inner = [0]
    if hi < P:
        prof = [sum(cross(first + f + k * P) for k in range(nblocks)) for f in range(1, P)]
        inner = narrow_cuts(prof, P, min_len=min(lo, hi), max_len=hi)
    starts: list[int] = []
    if first > 0:
        starts += narrow_cuts(list(crossing[: first - 1]), first, min_len=min(lo, hi), max_len=hi)
    for k in range(nblocks):
        starts += [first + k * P + f for f in inner]
    if last < L:
        starts += [last + q for q in narrow_cuts(list(crossing[last:]), L - last, min_len=min(lo, hi), max_len=hi)]
    return sorted(set(starts))


__all__ = ["Structure", "annotated_cuts", "crossing_sizes", "detect_structure", "find_period", "find_turn",
           "group_key", "has_repeated_blocks", "label_sequence", "lazy_sources", "merge_segments", "narrow_cuts",
           "prelude", "repeat_runs", "segment_mapping", "structure_of", "task_label", "wl_hash"]
