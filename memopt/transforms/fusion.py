"""Chain fusion: merge a task into the only reader of its only output (for the ``time`` models).

A *private link* v → w is a task v with one output datum d read by w
alone. Fusing it makes one task vw:

- inputs(vw) = inputs(v) ∪ (inputs(w) ∖ {d}); outputs(vw) = outputs(w)
  (the fused task keeps w's id; v's id and the datum d disappear);
- c(vw) = c(v) + c(w); recompute(vw) = recompute(v) ∧ recompute(w);
- w(vw) = max(s(d) + w(v) − s(y), s(d) + w(w), 0) with s(y) = Σ outputs(w),

so that its one compute point, R + s(y) + w(vw) (R: the resident data,
inputs included), covers both points of the pair: R + s(d) + w(v) when v
runs and R + s(d) + s(y) + w(w) when w runs.

**Expansion** (:meth:`Fusion.expand`, exact for *every* fused plan): each
``compute vw`` becomes ``compute v, compute w, free d`` in place, except a
recompute of vw that finds all of w's outputs resident (a no-op in SPEC
terms), which is dropped. The expanded plan is valid for the original
instance, with the same stages, a makespan no larger and a peak no larger
(the two compute points above). So a fused instance's plans are always
usable, and its optimum is an upper bound of the original's.

**When it is exact** (the optimum is preserved — rule ``source``): v has no
input, w(v) ≤ s(y) + w(w), no offloading, and, if recomputation is allowed,
s(y) ≤ s(d). Proof sketch: in an optimal plan, a copy of d kept to rerun w
can be replaced by keeping y (no larger, and one compute less), so every
copy of d is read by exactly one compute of w; v has no input, so each
compute of v can move to just before its w, which only shortens d's
lifetime; the new point of v, R + s(d) + w(v), is then at most w's point.
Both points are exactly the fused task's point, so the fused instance has
a plan as good as the optimum. A task that cannot rerun: every compute of
v feeds one compute of w, so recompute(vw) = recompute(v) ∧ recompute(w).

**Heuristic** (rule ``chain``, only when asked): any private link whose
reader has d as its only input and at most one output (a chain of
operations), optionally only if c(v) or c(w) ≤ ``max_time`` ("cheap"
operations). Fused plans stay valid (the expansion), but an optimum of the
fused instance may be worse than the original's, and its bounds are not
bounds of the original: a model solved on such an instance must report
``feasible`` and drop its bound (``Fusion.exact`` says which case applies).

O(n + m) per pass; passes repeat until no link fuses (chains collapse).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from memopt.core.instance import Datum, Instance, Task
from memopt.core.plan import COMPUTE, FREE, RELOAD, Event, Plan
from memopt.core.request import Request
from memopt.transforms.base import Transform

MODES = ("off", "exact", "chains")


@dataclass(frozen=True)
class FusionStep:
    """v (id) merged into w (id) through the private datum d (id), by ``rule``."""

    v: str
    w: str
    d: str
    rule: str


@dataclass
class Fusion(Transform):
    """A fused instance, the steps that made it and whether it preserves the optimum.

    As a :class:`~memopt.transforms.base.Transform` (made by :func:`fuse_request`): ``original`` and
    ``request`` are the requests before and after, :meth:`expand` maps plans back (values need no unscaling).
    """

    source: Instance
    instance: Instance
    steps: list[FusionStep] = field(default_factory=list)
    exact: bool = True
    original: Request | None = None
    request: Request | None = None

    @property
    def fused(self) -> int:
        return len(self.steps)

    def groups(self) -> dict[str, list[str]]:
        """Each task id of the fused instance -> the original task ids it runs, in order."""
        g: dict[str, list[str]] = {t.id: [t.id] for t in self.instance.tasks}
        for st in reversed(self.steps):
            seq = g.pop(st.w)
            g[st.w] = _expand_ids(st, seq, g)
        return g

    def expand(self, plan: Plan) -> Plan:
        """A plan of the fused instance as a plan of the original (see the module docstring)."""
        outputs = {t.id: [self.source.data[d].id for d in self.source.outputs[v]]
                   for v, t in enumerate(self.source.tasks)}
        for st in reversed(self.steps):
            plan = _expand_step(plan, st, outputs)
        return plan


def _expand_ids(step: FusionStep, seq: list[str], g: dict[str, list[str]]) -> list[str]:
    # w's own ids stay last; v's (possibly fused) ids come first
    v_seq = g.pop(step.v, [step.v])
    return v_seq + seq


def _expand_step(plan: Plan, step: FusionStep, outputs: dict[str, list[str]]) -> Plan:
    fast: set[str] = set()
    w_out = outputs[step.w]
    stages = []
    for st in plan.stages:
        ev: list[Event] = []
        reloads = []
        for e in st:
            if e.kind == COMPUTE and e.target == step.w:
                if w_out and all(y in fast for y in w_out):
                    continue  # a no-op recompute of the fused task
                ev += [Event(COMPUTE, step.v), Event(COMPUTE, step.w), Event(FREE, step.d)]
                fast.update(w_out)
                continue
            ev.append(e)
            if e.kind == COMPUTE:
                fast.update(outputs[e.target])
            elif e.kind == FREE:
                fast.discard(e.target)
            elif e.kind == RELOAD:
                reloads.append(e.target)
        fast.update(reloads)
        stages.append(ev)
    return Plan(stages)


def _private_links(inst: Instance):
    """(v, w, d) for every task v whose only output d is read by w alone."""
    for v in range(inst.n):
        outs = inst.outputs[v]
        if len(outs) != 1:
            continue
        d = outs[0]
        cons = inst.consumers[d]
        if len(cons) != 1:
            continue
        yield v, cons[0], d


def _rule(inst: Instance, v: int, w: int, d: int, mode: str, recompute: bool, offload: bool,
          max_time: int | None) -> str | None:
    s_y = inst.output_size[w]
    if not offload and not inst.inputs[v] and inst.workspace[v] <= s_y + inst.workspace[w] and \
            (not recompute or s_y <= inst.size[d]):
        return "source"
    if mode == "chains" and inst.inputs[w] == (d,) and len(inst.outputs[w]) <= 1:
        if max_time is None or min(inst.time[v], inst.time[w]) <= max_time:
            return "chain"
    return None


def _fuse_once(inst: Instance, v: int, w: int, d: int) -> Instance:
    tv, tw = inst.tasks[v], inst.tasks[w]
    s_d, s_y = inst.size[d], inst.output_size[w]
    ws = max(s_d + tv.workspace - s_y, s_d + tw.workspace, 0)
    fused = Task(tw.id, tv.time + tw.time, ws, tv.recompute and tw.recompute, tw.meta)
    tasks = [fused if i == w else t for i, t in enumerate(inst.tasks) if i != v]
    vid, wid = tv.id, tw.id
    data = []
    for j, dd in enumerate(inst.data):
        if j == d:
            continue
        if vid in dd.consumers:  # an input of v becomes an input of vw (once)
            cons = tuple(dict.fromkeys(wid if c == vid else c for c in dd.consumers))
            dd = Datum(dd.id, dd.producer, cons, dd.size)
        data.append(dd)
    return inst.replace(tasks=tasks, data=data)


def fuse(inst: Instance, mode: str = "exact", *, recompute: bool = True, offload: bool = False,
         max_time: int | None = None) -> Fusion:
    """Fuse private links: ``exact`` (rule ``source`` only) or ``chains`` (also rule ``chain``).

    ``recompute``/``offload`` are the techniques of the request the fused
    instance is for (the exactness conditions depend on them).
    """
    if mode not in MODES:
        from memopt.core.errors import MemoptError

        raise MemoptError(f"fusion mode {mode!r}: expected one of {', '.join(MODES)}")
    res = Fusion(inst, inst)
    if mode == "off":
        return res
    cur = inst
    while True:
        changed = False
        for v, w, d in _private_links(cur):
            rule = _rule(cur, v, w, d, mode, recompute, offload, max_time)
            if rule is None:
                continue
            res.steps.append(FusionStep(cur.tasks[v].id, cur.tasks[w].id, cur.data[d].id, rule))
            res.exact = res.exact and rule == "source"
            cur = _fuse_once(cur, v, w, d)
            changed = True
            break  # indices changed: rescan
        if not changed:
            break
    res.instance = cur
    return res


def fuse_request(req: Request, mode: str = "exact", max_time: int | None = None) -> Fusion:
    """Apply fusion to a request (same budget and limits): the :class:`Fusion`, with ``request`` the fused one."""
    fz = fuse(req.instance, mode, recompute=req.recompute, offload=req.offload, max_time=max_time)
    fz.original, fz.request = req, replace(req, instance=fz.instance)
    return fz


__all__ = ["fuse", "fuse_request", "Fusion", "FusionStep", "MODES"]
