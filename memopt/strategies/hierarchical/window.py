"""A neighbourhood of a plan: every computation of a set of tasks U, the rest fixed and summarised.

A plan here is a compute sequence with liveness frees (:mod:`.sequence`).
Given a set U of tasks, the computations of U tasks from the first one
(position a) to the last (b − 1) form *ranges*; the other computations
between them form *gaps*, fixed. :func:`build_window` turns that into an
instance of its own whose plans are exactly the valid replacements:

- **tasks**: the tasks of U (as they are), ``ENTRY`` (first), one task
  ``GAP_k`` per gap (in their order) and ``EXIT`` (last), time 0;
- **data**: the outputs of U tasks (*U-data*); the data U reads from
  outside, one datum per *copy* (a computation of its producer that made it
  anew), made by ``ENTRY`` (the copy resident at a) or by the ``GAP_k`` whose
  computes made it; ``GAP_k`` reads every U-datum or copy its computes
  read; ``EXIT`` reads those resident at b that are needed later (the
  *live-out*); an output nothing reads gets a reader of its own (a sink);
- **memory**: data the window does not know (*rest*) are fixed: constant in
  a range, varying in a gap. With R0 the least of them, the budget is
  M − R0; range k holds a ballast datum of size rest_k − R0; ``GAP_k`` has
  workspace max_{p ∈ gap k} rest(p) − R0.

A U task that reads two copies of a datum in different computations stays
outside U (:func:`refine`): each U task is bound to one copy of each input.

**Why a plan of the window is a valid replacement** (:func:`splice` puts
the gaps' computes back in place of the ``GAP_k``): a U computation finds
its inputs (U-data it made, a copy made by ``ENTRY``/a gap before it); a gap
computation finds what it reads (``GAP_k`` reads it); after b the live-out
is resident. At a gap point p the known data resident are at most those
resident at ``GAP_k`` plus the copies the gap makes, and the rest is
unchanged: the memory is at most ``GAP_k``'s point in the window plan; in a
range, the window plan's memory plus R0. The warm start (the current
computes) is a plan of the window, so the exact model only returns
something at least as good; the evaluator judges the spliced plan anyway.
O(length of the sequence) per window, plus the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from memopt.core.instance import Datum, Instance, Task
from memopt.core.plan import COMPUTE, Plan
from memopt.core.request import Request
from memopt.core.status import Objective
from memopt.strategies.hierarchical.sequence import liveness_frees, plan_from_sequence

PREFIX = "__window_"
ENTRY, EXIT = "__window_entry__", "__window_exit__"


def _gap_id(k: int) -> str:
    return f"{PREFIX}gap_{k}__"


@dataclass
class Window:
    """A window's request, its warm start and how to put its plans back."""

    request: Request
    warm: Plan
    a: int
    b: int
    gaps: list[tuple[int, int]]          # [start, end) positions of each gap
    tasks: int                            # |U|
    stats: dict = field(default_factory=dict)


def copy_reads(inst: Instance, seq: Sequence[int], frees: list[list[int]]) -> list[list[int]]:
    """For each compute i, the copy (position of the compute that made it) of each input of ``seq[i]``."""
    cur: dict[int, int] = {}
    reads: list[list[int]] = []
    for i, v in enumerate(seq):
        reads.append([cur.get(d, -1) for d in inst.inputs[v]])
        for d in inst.outputs[v]:
            if d not in cur:
                cur[d] = i
        for d in frees[i]:
            cur.pop(d, None)
    return reads


def ballast_layers(level: Sequence[int]) -> list[tuple[int, int, int]]:
    """Layers ``(first range, last range, size)`` whose sizes sum, over the layers covering range k, to
    ``level[k]`` (a stack: a rise adds a layer, a fall ends the newest ones, split if needed). O(len)."""
    out: list[tuple[int, int, int]] = []
    stack: list[list[int]] = []  # [first range, size]
    total = 0
    for k, want in enumerate(list(level) + [0]):
        while total > want:
            first, size = stack[-1]
            cut = min(size, total - want)
            out.append((first, k - 1, cut))
            total -= cut
            if cut == size:
                stack.pop()
            else:
                stack[-1][1] = size - cut
        if want > total and k < len(level):
            stack.append([k, want - total])
            total = want
    return out


def refine(inst: Instance, seq: Sequence[int], U: set[int], reads: list[list[int]]) -> set[int]:
    """U without the tasks that read different copies of an outside datum (repeated until stable)."""
    U = set(U)
    while True:
        bound: dict[tuple[int, int], int] = {}
        bad: set[int] = set()
        for i, v in enumerate(seq):
            if v not in U:
                continue
            for d, c in zip(inst.inputs[v], reads[i]):
                if inst.producer[d] not in U and bound.setdefault((v, d), c) != c:
                    bad.add(v)
        if not bad:
            return U
        U -= bad


def build_window(req: Request, seq: Sequence[int], U: set[int], *, max_fixed: int = 400,
                 frees: list[list[int]] | None = None) -> Window | None:
    """The window of the task set U in ``seq`` (module docstring); ``None`` when there is nothing to do.

    ``max_fixed``: the most fixed blocks (``GAP`` tasks) the window may have.
    """
    inst = req.instance
    if frees is None:
        frees = liveness_frees(inst, seq)
    reads = copy_reads(inst, seq, frees)
    U = refine(inst, seq, U, reads)
    pos = [i for i, v in enumerate(seq) if v in U]
    if len(pos) < 2:
        return None
    a, b = pos[0], pos[-1] + 1
    size = inst.size
    tids = [t.id for t in inst.tasks]
    dids = [d.id for d in inst.data]
    udata = {d for v in U for d in inst.outputs[v]}
    # ---- the copies of outside data that U reads
    copy_keys: set[tuple[int, int]] = set()
    for i in pos:
        for d, c in zip(inst.inputs[seq[i]], reads[i]):
            if d not in udata:
                copy_keys.add((d, c))
    # ---- one pass: the rest (memory of unknown data) at each fixed compute and after it; known events
    known: set[int] = set()
    resident: set[int] = set()
    res_total = res_known = 0
    point_rest: dict[int, int] = {}   # fixed position -> rest memory at its compute
    after_rest: dict[int, int] = {}   # position -> rest memory after it (frees done)
    event: dict[int, tuple[set[int], set[int]]] = {}  # fixed position -> (known data read, copies made)
    rest_at_a = 0
    for i in range(b):
        v = seq[i]
        if i == a:
            rest_at_a = res_total - res_known
        new = [d for d in inst.outputs[v] if d not in resident]
        if i >= a and v not in U:
            rd = {d for d in inst.inputs[v] if d in known}
            mk = {d for d in new if (d, i) in copy_keys}
            if rd or mk:
                event[i] = (rd, mk)
            at = res_total + sum(size[d] for d in new) + inst.workspace[v]
            point_rest[i] = at - res_known - sum(size[d] for d in mk)
        for d in new:
            resident.add(d)
            res_total += size[d]
            if (d in udata and i >= a) or (d, i) in copy_keys:
                known.add(d)
                res_known += size[d]
        for d in frees[i]:
            if d in resident:
                resident.discard(d)
                res_total -= size[d]
                if d in known:
                    known.discard(d)
                    res_known -= size[d]
        after_rest[i] = res_total - res_known
    live_out = set(known & resident)
    # ---- fixed blocks: runs of fixed computes, each known event a block of its own
    blocks: list[list[int]] = []
    prev_fixed = False
    for i in range(a, b):
        if seq[i] in U:
            prev_fixed = False
            continue
        if i in event or not prev_fixed or (blocks and blocks[-1][-1] in event):
            blocks.append([i])
        else:
            blocks[-1].append(i)
        prev_fixed = True
    if len(blocks) > max_fixed:
        return None
    block_of = {i: k for k, blk in enumerate(blocks) for i in blk}
    gid = [_gap_id(k) for k in range(len(blocks))]
    # levels: the rest between consecutive fixed blocks (ranges: ENTRY..block 0, ..., last block..EXIT)
    level = [rest_at_a] + [after_rest[blk[-1]] for blk in blocks]
    R0 = min(level)
    budget = req.budget - R0
    if budget < 0:
        return None
    level = [x - R0 for x in level]
    # ---- the window's data
    producer: dict[str, str] = {}
    dsize: dict[str, int] = {}
    consumers: dict[str, list[str]] = {}
    wid_of: dict[tuple[int, int], str] = {}
    for d in sorted(udata):
        producer[dids[d]], dsize[dids[d]], consumers[dids[d]] = tids[inst.producer[d]], size[d], []
    for d, c in sorted(copy_keys):
        wid = dids[d] if c < a else f"{dids[d]}{PREFIX}copy_{c}"
        wid_of[d, c] = wid
        producer[wid] = ENTRY if c < a else gid[block_of[c]]
        dsize[wid], consumers[wid] = size[d], []
    for i in pos:
        v = seq[i]
        for d, c in zip(inst.inputs[v], reads[i]):
            wid = dids[d] if d in udata else wid_of[d, c]
            if tids[v] not in consumers[wid]:
                consumers[wid].append(tids[v])
    # what each fixed block reads of the known data: the copy resident then (U-data: the datum itself)
    cur: dict[int, str] = {d: w for (d, c), w in wid_of.items() if c < a}  # ENTRY's copies, resident at a
    for i in range(a, b):
        v = seq[i]
        if i in event:
            for d in event[i][0]:
                wid = cur.get(d)
                if wid is not None and gid[block_of[i]] not in consumers[wid]:
                    consumers[wid].append(gid[block_of[i]])
        for d in inst.outputs[v]:
            if v in U:
                cur[d] = dids[d]
            elif (d, i) in wid_of:
                cur[d] = wid_of[d, i]
        for d in frees[i]:
            cur.pop(d, None)
    for d in live_out:  # resident at b and needed later: the copy current then
        wid = cur.get(d)
        if wid is not None and EXIT not in consumers[wid]:
            consumers[wid].append(EXIT)
    # ---- the window instance
    tasks: list[Task] = [Task(ENTRY, 0, 0, False)]
    for v in dict.fromkeys(seq[i] for i in pos):
        t = inst.tasks[v]
        tasks.append(Task(t.id, t.time, t.workspace, t.recompute))
    for k, blk in enumerate(blocks):
        # at GAP_k the ballast is max(level before, level after): its workspace covers the rest beyond
        ws = max(0, max(point_rest[i] for i in blk) - R0 - max(level[k], level[k + 1]))
        tasks.append(Task(gid[k], 0, ws, False))
    sinks: dict[str, list[str]] = {}
    data: list[Datum] = []
    for wid, cons in consumers.items():
        if not cons:
            sid = f"{PREFIX}sink_{len(data)}__"
            sinks.setdefault(producer[wid], []).append(sid)
            tasks.append(Task(sid, 0, 0, True))
            cons = [sid]
        data.append(Datum(wid, producer[wid], tuple(cons), dsize[wid]))
    tasks.append(Task(EXIT, 0, 0, False))
    chain = [ENTRY] + gid + [EXIT]
    for x, y in zip(chain, chain[1:]):
        data.append(Datum(f"{PREFIX}chain_{x}", x, (y,), 0))
    for k, (first, last, amount) in enumerate(ballast_layers(level)):
        data.append(Datum(f"{PREFIX}ballast_{k}__", chain[first], (chain[last + 1],), amount))
    fed = {c for d in data for c in d.consumers}
    roots = tuple(t.id for t in tasks if t.id != ENTRY and t.id not in fed)
    if roots:
        data.append(Datum(f"{PREFIX}roots__", ENTRY, roots, 0))
    feeding = {d.producer for d in data}
    for t in tasks:
        if t.id != EXIT and t.id not in feeding:
            data.append(Datum(f"{PREFIX}leaf_{t.id}", t.id, (EXIT,), 0))
    sub = Instance(tasks, data, name=f"{inst.name}[window {a}:{b}]")
    wreq = Request(sub, Objective.TIME, budget=budget, recompute=True)
    # ---- the warm start: the current computes, each fixed block replaced by its task
    six = sub.task_index
    wseq: list[int] = []
    placed: set[str] = set()

    def put(tid: str) -> None:
        wseq.append(six[tid])
        if tid not in placed:
            placed.add(tid)
            for x in sinks.get(tid, ()):
                wseq.append(six[x])

    put(ENTRY)
    for i in range(a, b):
        k = block_of.get(i)
        if k is None:
            put(tids[seq[i]])
        elif i == blocks[k][0]:
            put(gid[k])
    wseq.append(six[EXIT])
    gaps = [(blk[0], blk[-1] + 1) for blk in blocks]
    return Window(wreq, plan_from_sequence(sub, wseq), a, b, gaps, len(U),
                  {"fixed_blocks": len(blocks), "copies": len(wid_of), "rest_offset": R0})


def splice(inst: Instance, seq: Sequence[int], w: Window, plan: Plan) -> list[int]:
    """The whole compute sequence with the window's computes replaced by ``plan``'s (gaps put back)."""
    tix = inst.task_index
    middle: list[int] = []
    for _, e in plan.events():
        if e.kind != COMPUTE:
            continue
        if e.target.startswith(PREFIX):
            if e.target.startswith(f"{PREFIX}gap_"):
                k = int(e.target[len(f"{PREFIX}gap_"):-2])
                s, t = w.gaps[k]
                middle.extend(seq[s:t])
            continue
        middle.append(tix[e.target])
    return list(seq[:w.a]) + middle + list(seq[w.b:])


__all__ = ["ENTRY", "EXIT", "Window", "ballast_layers", "build_window", "copy_reads", "refine", "splice"]
