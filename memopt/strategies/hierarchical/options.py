"""The operations of each group and their options (Rockmate's menu of block schedules).

For group g of a :class:`~.chain.Chain` the chain DP (:mod:`.dp`) combines

- ``FN``: the forward without tape — the non-pinned forward tasks that
  ``X[g]`` needs, in the base order; it leaves ``X[g]`` only. ``FN1``, the
  first-pass version, computes the pinned forward tasks of g first (with
  the forward tasks they need);
- options ``o`` = (``FT``, ``K``, ``B``): a forward that leaves ``X[g]`` and
  the *tape* ``K`` (forward data of g kept for the backward), and a
  backward that recomputes, when first needed, what is not kept (and
  keeps it until its last read). ``FT1`` is the first-pass version.

Every operation is measured by :func:`.sequence.simulate` on top of the
data the DP counts outside it (:class:`OpCost`: time and peak above the
resident data), so the DP's sums are the evaluator's memory exactly
(:mod:`.dp`, tested against brute force).

Options come from the tape: the full tape (nothing recomputed), then tapes
with the data cheapest to recompute per byte dropped first
(:func:`heuristic_options`), and from the exact models on the group's own
instance (:mod:`.block_models`). :func:`prune_options` keeps the options no
other option dominates. Identical groups (an isomorphism of their tasks
and data roles, :func:`group_classes`) share one computation: options are
mapped, not recomputed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from memopt.core.instance import Instance
from memopt.graph.structure import segment_mapping
from memopt.strategies.hierarchical.chain import B_SIDE, Chain
from memopt.strategies.hierarchical.sequence import simulate


@dataclass(frozen=True)
class OpCost:
    """Time and peak (above the data resident before it) of one operation."""

    time: int
    peak: int


@dataclass
class Option:
    """A tape and the forward/backward sequences that use it (module docstring)."""

    ft: list[int]
    ft1: list[int]
    b: list[int]
    tape: frozenset[int]
    cost_ft: OpCost = OpCost(0, 0)
    cost_ft1: OpCost = OpCost(0, 0)
    cost_b: OpCost = OpCost(0, 0)
    source: str = "heuristic"
    tape_size: int = 0

    def key(self) -> tuple:
        return (self.cost_ft.time + self.cost_b.time, self.cost_ft.peak, self.cost_ft1.peak, self.tape_size,
                self.cost_b.peak)


@dataclass
class GroupOps:
    """Everything the DP needs about one group: ``FN``, ``FN1`` and the options.

    ``cost_fn``/``cost_fn1`` free the input ``X[g−1]`` at its last read (a
    forward inside a split); ``keep_fn``/``keep_fn1`` keep it (the split's
    checkpoint).
    """

    fn: list[int]
    fn1: list[int]
    cost_fn: OpCost
    cost_fn1: OpCost
    keep_fn: OpCost
    keep_fn1: OpCost
    options: list[Option] = field(default_factory=list)


# ------------------------------------------------------------ contexts
Context = tuple[set[int], set[int], set[int]]


def _touched(inst: Instance, seq: Iterable[int]) -> set[int]:
    out: set[int] = set()
    for v in seq:
        out.update(inst.inputs[v])
        out.update(inst.outputs[v])
    return out


def _pinned_f(ch: Chain, d: int) -> bool:
    return d in ch.release and ch.side[ch.inst.producer[d]] != B_SIDE


def forward_context(ch: Chain, g: int, first: bool, keep: Iterable[int], seq: Sequence[int],
                    free_input: bool = False) -> Context:
    """(external, keep, drop) of a forward operation of g running ``seq`` (:func:`.sequence.simulate`).

    Resident before it: ``X[g−1]`` and the pinned forward data (first pass:
    those made before g). It leaves ``keep`` (and, first pass, g's pinned
    data); ``free_input``: ``X[g−1]`` is freed at its last read. Only the
    data ``seq`` touches are listed.
    """
    inst = ch.inst
    xin = ch.xset(g - 1)
    ext = set()
    for d in _touched(inst, seq):
        if d in xin or (_pinned_f(ch, d) and (not first or ch.group[inst.producer[d]] < g)):
            ext.add(d)
    kp = set(keep) | (_own_pinned(ch, g) if first else set())
    return ext, kp, ({d for d in ext if d in xin} if free_input else set())


def backward_external(ch: Chain, g: int, tape: frozenset[int] | set[int], d: int) -> bool:
    """Whether datum d is resident before ``B_g`` (:func:`backward_context`)."""
    p = ch.inst.producer[d]
    return (d in tape or d in ch.xset(g - 1) or d in ch.xbset(g)
            or (d in ch.release and (ch.side[p] != B_SIDE or ch.group[p] > g)))


def backward_context(ch: Chain, g: int, tape: Iterable[int], seq: Sequence[int]) -> Context:
    """(external, keep, drop) of ``B_g`` running ``seq``.

    Resident before it: ``X[g−1]``, the tape, ``XB[g]``, the pinned forward
    data, the crossing data made after g. It leaves its crossing data
    (gradients of earlier groups, results) and frees at their last read
    the tape, ``XB[g]``, ``X[g−1]`` except what ``B_{g−1}`` reads, and the
    data released at g (nothing reads them later). Only the data ``seq``
    touches are listed.
    """
    inst = ch.inst
    tape = frozenset(tape)
    ext = {d for d in _touched(inst, seq) if backward_external(ch, g, tape, d)}
    keep = set(ch.crossing_made(g))
    xin, xbp, xbg = ch.xset(g - 1), ch.xbset(g - 1), ch.xbset(g)
    drop = {d for d in ext if d in tape or d in xbg or (d in xin and d not in xbp) or ch.release.get(d) == g}
    return ext, keep, drop


def _own_pinned(ch: Chain, g: int) -> set[int]:
    return {d for v in ch.pinned_f[g] for d in ch.inst.outputs[v]}


def _closure(inst: Instance, targets: Iterable[int], allowed: set[int], order_pos: dict[int, int]) -> list[int]:
    """The tasks of ``allowed`` that the ``targets`` need (themselves included), in the base order."""
    need: set[int] = set()
    stack = [v for v in targets if v in allowed]
    while stack:
        v = stack.pop()
        if v in need:
            continue
        need.add(v)
        stack.extend(u for u in inst.preds[v] if u in allowed and u not in need)
    return sorted(need, key=order_pos.__getitem__)


def first_prefix(ch: Chain, g: int, pos: dict[int, int]) -> list[int]:
    """The first-pass prefix of group g: its pinned forward tasks and the forward tasks of g they need."""
    if not ch.pinned_f[g]:
        return []
    allowed = set(ch.F[g]) | set(ch.pinned_f[g])
    return _closure(ch.inst, ch.pinned_f[g], allowed, pos)


def measure(ch: Chain, seq: list[int], ctx: tuple[set[int], set[int], set[int]]) -> OpCost:
    ext, keep, drop = ctx
    piece = simulate(ch.inst, seq, ext, keep, drop)
    return OpCost(piece.time, piece.peak)


def group_ops(ch: Chain, g: int, pos: dict[int, int]) -> GroupOps:
    """``FN``/``FN1`` of group g and their costs (options are added by :func:`heuristic_options`)."""
    inst = ch.inst
    xg = set(ch.X[g])
    fn = _closure(inst, [inst.producer[d] for d in xg], set(ch.F[g]), pos)
    fn1 = first_prefix(ch, g, pos) + fn

    def cost(seq: list[int], first: bool, free: bool) -> OpCost:
        return measure(ch, seq, forward_context(ch, g, first, xg, seq, free))

    return GroupOps(fn, fn1, cost(fn, False, True), cost(fn1, True, True), cost(fn, False, False),
                    cost(fn1, True, False))


def make_option(ch: Chain, g: int, ft: list[int], tape: Iterable[int], b: list[int], pos: dict[int, int],
                source: str, first: bool = True) -> Option:
    """An option from its forward sequence, tape and backward sequence, measured (first-pass version derived;
    ``first=False``: measured later by :func:`measure_first` — the first pass of a group holding the
    parameters is long)."""
    inst = ch.inst
    tape = frozenset(tape)
    keep = set(ch.X[g]) | tape
    o = Option(ft, [], b, tape, source=source)
    o.cost_ft = measure(ch, ft, forward_context(ch, g, False, keep, ft))
    o.cost_b = measure(ch, b, backward_context(ch, g, tape, b))
    o.tape_size = sum(inst.size[d] for d in tape)
    if first:
        measure_first(ch, g, o, pos)
    return o


def measure_first(ch: Chain, g: int, o: Option, pos: dict[int, int]) -> Option:
    """Fill in the first-pass forward of option ``o`` (the pinned tasks first) and its cost."""
    o.ft1 = first_prefix(ch, g, pos) + o.ft
    o.cost_ft1 = measure(ch, o.ft1, forward_context(ch, g, True, set(ch.X[g]) | o.tape, o.ft1))
    return o


def backward_sequence(ch: Chain, g: int, tape: set[int]) -> list[int]:
    """``B_g`` in the base order, each missing forward datum recomputed (with what it needs) when first read."""
    inst = ch.inst
    tape = frozenset(tape)
    avail: set[int] = set()
    fwd = set(ch.F[g])
    seq: list[int] = []

    def ensure(d: int) -> None:
        if d in avail or backward_external(ch, g, tape, d):
            return
        p = inst.producer[d]
        if p not in fwd:
            raise ValueError(f"{inst.data[d].id!r} is neither resident nor made by a forward task of the group")
        for x in inst.inputs[p]:
            ensure(x)
        seq.append(p)
        avail.update(inst.outputs[p])

    for v in ch.B[g]:
        for d in inst.inputs[v]:
            ensure(d)
        seq.append(v)
        avail.update(inst.outputs[v])
    return seq


def full_tape(ch: Chain, g: int) -> list[int]:
    """The forward data of g (not ``X[g]``, not pinned) that ``B_g`` reads."""
    inst = ch.inst
    xg = set(ch.X[g])
    out = []
    for v in ch.F[g]:
        for d in inst.outputs[v]:
            if d in xg:
                continue
            if any(ch.side[c] == B_SIDE and ch.group[c] == g for c in inst.consumers[d]):
                out.append(d)
    return out


def heuristic_options(ch: Chain, g: int, pos: dict[int, int],
                      levels: Sequence[float] = (0.25, 0.5, 0.75, 1.0)) -> list[Option]:
    """The full tape, then tapes with the cheapest data to recompute per byte dropped first (``levels``:
    fractions of the full tape's size dropped)."""
    inst = ch.inst
    ft = list(ch.F[g])
    full = full_tape(ch, g)
    opts = [make_option(ch, g, ft, full, backward_sequence(ch, g, set(full)), pos, "full tape")]
    total = sum(inst.size[d] for d in full)
    if not full or total == 0:
        return opts
    # cheapest first: recompute time of the producer per byte (0-time views first)
    ranked = sorted(full, key=lambda d: (inst.time[inst.producer[d]] / max(1, inst.size[d]), pos[inst.producer[d]]))
    dropped: set[int] = set()
    acc = 0
    li = 0
    for d in ranked:
        if li >= len(levels):
            break
        dropped.add(d)
        acc += inst.size[d]
        if acc >= levels[li] * total - 1e-9:
            while li < len(levels) and acc >= levels[li] * total - 1e-9:
                li += 1
            tape = [x for x in full if x not in dropped]
            opts.append(make_option(ch, g, ft, tape, backward_sequence(ch, g, set(tape)), pos,
                                    f"tape {100 * (total - acc) // total}%"))
    return opts


def prune_options(opts: list[Option]) -> list[Option]:
    """The options no other option dominates (time, forward peaks, tape, backward peak all ≤).

    Lexicographic order first: an option is dominated iff one kept before it
    dominates it (domination is transitive). O(n log n + n · kept).
    """
    kept: list[tuple[tuple, Option]] = []
    for key, o in sorted(((o.key(), o) for o in opts), key=lambda x: x[0]):
        if not any(all(a <= b for a, b in zip(k, key)) for k, _ in kept):
            kept.append((key, o))
    return [o for _, o in kept]


# ------------------------------------------------------------ identical groups
def _roles(ch: Chain, g: int) -> dict[int, tuple]:
    """What each datum made by group g is for the DP (checkpoint, read by B, released when, tape candidate)."""
    xg, xbg = set(ch.X[g]), set(ch.XB[g])
    out = {}
    for v in ch.tasks(g):
        for d in ch.inst.outputs[v]:
            r = ch.release.get(d)
            out[d] = (d in xg, d in xbg, r is None, r == g, r == -1, ch.pinned[v], ch.side[v])
    return out


def group_classes(ch: Chain) -> list[tuple[int, dict[int, int] | None]]:
    """For each group, ``(representative group, task map representative -> group)`` (``None``: itself).

    Two groups share options when the positional map of their task lists
    (pinned forward, forward, backward) is an isomorphism with the same
    boundary and the same data roles.
    """
    inst = ch.inst
    reps: list[int] = []
    out: list[tuple[int, dict[int, int] | None]] = []
    for g in range(ch.k):
        found = None
        tg = ch.tasks(g)
        for r in reps:
            tr = ch.tasks(r)
            if len(tr) != len(tg) or len(ch.F[r]) != len(ch.F[g]) or len(ch.B[r]) != len(ch.B[g]):
                continue
            f = segment_mapping(inst, tr, tg)
            if f is None:
                continue
            roles_r, roles_g = _roles(ch, r), _roles(ch, g)
            ok = True
            for v in tr:
                for dr, dg in zip(inst.outputs[v], inst.outputs[f[v]]):
                    if roles_r[dr] != roles_g[dg]:
                        ok = False
                        break
                if not ok:
                    break
            if ok and ch.x(r - 1) == ch.x(g - 1):
                found = (r, f)
                break
        if found is None:
            reps.append(g)
            out.append((g, None))
        else:
            out.append(found)
    return out


def map_option(ch: Chain, g: int, o: Option, f: dict[int, int], pos: dict[int, int], measure: bool = False
               ) -> Option:
    """Option ``o`` of a representative group mapped to group g by the task map ``f``.

    The groups are isomorphic with the same data roles (:func:`group_classes`),
    so the costs are ``o``'s; ``measure`` measures them again (the caller
    does when a plan built on copied costs is refused by the evaluator).
    """
    inst = ch.inst
    dmap = {}
    for v, w in f.items():
        for a, b in zip(inst.outputs[v], inst.outputs[w]):
            dmap[a] = b
    ft, tape, b = [f[v] for v in o.ft], [dmap[d] for d in o.tape], [f[v] for v in o.b]
    if measure:
        return make_option(ch, g, ft, tape, b, pos, o.source)
    return Option(ft, first_prefix(ch, g, pos) + ft, b, frozenset(tape), o.cost_ft, o.cost_ft1, o.cost_b, o.source,
                  o.tape_size)




def recompute_time(ch: Chain, g: int, tape: set[int]) -> int:
    """The time ``B_g`` spends recomputing when it keeps ``tape`` (:func:`backward_sequence`'s policy:
    each missing forward datum once, with what it needs). O(size of the group)."""
    inst = ch.inst
    tape = frozenset(tape)
    fwd = set(ch.F[g])
    done: set[int] = set()
    total = 0
    stack = [d for v in ch.B[g] for d in inst.inputs[v]]
    while stack:
        d = stack.pop()
        p = inst.producer[d]
        if p in done or p not in fwd or backward_external(ch, g, tape, d):
            continue
        done.add(p)
        total += inst.time[p]
        stack.extend(inst.inputs[p])
    return total


SCAN = 24
"""The marginal greedy of :func:`subset_options` evaluates this many candidates per step."""


def subset_options(ch: Chain, g: int, pos: dict[int, int], max_candidates: int = 10, levels: int = 16,
                   deadline=None) -> list[Option]:
    """Every tape that keeps a subset of the full tape's data (when it has at most ``max_candidates``),
    measured and pruned to the non-dominated ones: O(2^c) options for c candidates. Otherwise the
    marginal greedy: repeatedly drop the data whose recomputation adds the least time per byte freed
    (:func:`recompute_time`; among the :data:`SCAN` cheapest per byte alone, c/32 at a time), with
    ``levels`` options measured along the way."""
    inst = ch.inst
    ft = list(ch.F[g])
    full = full_tape(ch, g)

    def option(tape: list[int]) -> Option:
        return make_option(ch, g, ft, tape, backward_sequence(ch, g, set(tape)), pos, f"tape {len(tape)}/{len(full)}",
                           first=False)

    def done(opts: list[Option]) -> list[Option]:
        # pruned on the again-costs first, then the survivors' first passes measured and pruned again
        return prune_options([measure_first(ch, g, o, pos) for o in prune_options(opts)])

    out: list[Option] = []
    if len(full) <= max_candidates:
        for mask in range(1 << len(full)):
            if deadline is not None and deadline.expired():
                break
            out.append(option([d for i, d in enumerate(full) if mask >> i & 1]))
        return done(out)
    kept = list(full)
    path: list[list[int]] = [list(kept)]
    base = recompute_time(ch, g, set(kept))
    batch = max(1, len(full) // 32)  # at most about 32 steps, each dropping the best ``batch`` data
    while kept and not (deadline is not None and deadline.expired()):
        # marginal costs of the SCAN data cheapest per byte to recompute alone (a large block has hundreds)
        scan = sorted(kept, key=lambda x: (inst.time[inst.producer[x]] / max(1, inst.size[x]), pos[inst.producer[x]]))
        ranked = []
        for d in scan[:SCAN]:
            t = recompute_time(ch, g, set(kept) - {d})
            ranked.append(((t - base) / max(1, inst.size[d]), pos[inst.producer[d]], d))
        ranked.sort()
        for _, _, d in ranked[:batch]:
            kept.remove(d)
        base = recompute_time(ch, g, set(kept))
        path.append(list(kept))
    step = max(1, len(path) // levels)
    for i in sorted(set(range(0, len(path), step)) | {len(path) - 1}):
        if deadline is not None and deadline.expired():
            break
        out.append(option(path[i]))
    return done(out)


__all__ = ["GroupOps", "OpCost", "Option", "backward_context", "backward_external", "backward_sequence", "first_prefix",
           "forward_context", "full_tape", "group_classes", "group_ops", "heuristic_options", "make_option",
           "map_option", "measure", "measure_first", "prune_options", "recompute_time", "subset_options"]
