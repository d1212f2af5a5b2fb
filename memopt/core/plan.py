"""Plans: lists of stages of events (SPEC §2).

A :class:`Plan` is immutable: a tuple of stages, each a tuple of
:class:`Event`. Events name tasks and data by id, so a plan is meaningful
on its own and round-trips through the plan file of SPEC §4.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from memopt.core.errors import PlanFormatError
from memopt.core.files import file_id
from memopt.core.instance import Instance

COMPUTE, FREE, OFFLOAD, RELOAD = "compute", "free", "offload", "reload"
EVENT_KINDS = (COMPUTE, FREE, OFFLOAD, RELOAD)
TRANSFERS = (OFFLOAD, RELOAD)


class Event(NamedTuple):
    """One event: ``kind`` is compute, free, offload or reload; ``target`` an id."""

    kind: str
    target: str

    def to_dict(self) -> dict[str, str]:
        return {self.kind: self.target}

    def __str__(self) -> str:
        return f"{self.kind} {self.target}"


def compute(v: str) -> Event:
    return Event(COMPUTE, v)


def free(d: str) -> Event:
    return Event(FREE, d)


def offload(d: str) -> Event:
    return Event(OFFLOAD, d)


def reload(d: str) -> Event:
    return Event(RELOAD, d)


@dataclass(frozen=True)
class Plan:
    """A list of stages, each a list of events."""

    stages: tuple[tuple[Event, ...], ...]

    def __init__(self, stages: Iterable[Iterable[Event | tuple[str, str]]] = ()):
        object.__setattr__(self, "stages", tuple(tuple(Event(*e) for e in st) for st in stages))

    def __len__(self) -> int:
        return len(self.stages)

    def __iter__(self) -> Iterator[tuple[Event, ...]]:
        return iter(self.stages)

    def events(self) -> Iterator[tuple[int, Event]]:
        """All events with their stage index, in list order."""
        for k, st in enumerate(self.stages):
            for e in st:
                yield k, e

    def compute_order(self) -> list[str]:
        """The task ids in the order of their *first* compute."""
        seen: set[str] = set()
        out: list[str] = []
        for _, e in self.events():
            if e.kind == COMPUTE and e.target not in seen:
                seen.add(e.target)
                out.append(e.target)
        return out

    def count(self, kind: str) -> int:
        return sum(1 for _, e in self.events() if e.kind == kind)

    def task_order(self, inst: Instance) -> list[int] | None:
        """The tasks (indices) in the order of their first compute, if that is a topological order of all of them.

        The order a model or search can start from; ``None`` when the plan
        names unknown tasks, misses some, or runs one before its inputs'
        producers.
        """
        try:
            order = [inst.task_index[t] for t in self.compute_order()]
        except KeyError:
            return None
        if sorted(order) != list(range(inst.n)):
            return None
        pos = {v: k for k, v in enumerate(order)}
        if any(pos[u] > pos[v] for v in range(inst.n) for u in inst.preds[v]):
            return None
        return order

    # --------------------------------------------------------------- build
    @classmethod
    def from_order(cls, inst: Instance, order: Sequence[int | str]) -> Plan:
        """The pure schedule of ``order`` (task indices or ids).

        One compute per stage; each datum is freed in the stage of its last
        consumer, right after that compute (SPEC §2). Results are never
        freed.
        """
        idx = [inst.task_index[v] if isinstance(v, str) else int(v) for v in order]
        pos = {v: k for k, v in enumerate(idx)}
        frees: list[list[int]] = [[] for _ in idx]
        for j in range(inst.m):
            cons = inst.consumers[j]
            if not cons:
                continue
            last = -1
            for c in cons:
                p = pos.get(c)
                if p is None:
                    last = -1  # a consumer never runs: keep the datum (the evaluator will object)
                    break
                if p > last:
                    last = p
            if last >= 0:
                frees[last].append(j)
        tids = [t.id for t in inst.tasks]
        dids = [d.id for d in inst.data]
        stages = tuple((Event(COMPUTE, tids[v]), *[Event(FREE, dids[j]) for j in sorted(frees[k])])
                       for k, v in enumerate(idx))
        plan = cls.__new__(cls)  # the events are made here: no second copy through __init__
        object.__setattr__(plan, "stages", stages)
        return plan

    # ----------------------------------------------------------------- file
    def to_list(self) -> list[list[dict[str, str]]]:
        return [[e.to_dict() for e in st] for st in self.stages]

    @classmethod
    def from_list(cls, raw: Any, where: str = "<plan>") -> Plan:
        """Read the ``stages`` structure of a plan file.

        An event is ``{compute: v}`` or the string ``"compute v"``.
        """
        if not isinstance(raw, list):
            raise PlanFormatError(f"{where}: 'stages' must be a list of stages, got {type(raw).__name__}")
        stages = []
        for k, st in enumerate(raw):
            if st is None:
                st = []
            if isinstance(st, (dict, str)):
                st = [st]
            if not isinstance(st, list):
                raise PlanFormatError(f"{where}: stage {k + 1} must be a list of events, got {st!r}")
            events = []
            for i, ev in enumerate(st):
                events.append(_event_from_raw(ev, f"{where}: stage {k + 1}, event {i + 1}"))
            stages.append(events)
        return cls(stages)


def _event_from_raw(ev: Any, where: str) -> Event:
    if isinstance(ev, str):
        parts = ev.split(None, 1)
        if len(parts) != 2:
            raise PlanFormatError(f"{where}: cannot read event {ev!r} (expected e.g. 'compute a')")
        kind, target = parts[0], parts[1].strip()
    elif isinstance(ev, dict) and len(ev) == 1:
        ((kind, target),) = ev.items()
    else:
        raise PlanFormatError(f"{where}: an event is one of {{compute: v}}, {{free: d}}, {{offload: d}}, "
                              f"{{reload: d}}; got {ev!r}")
    if kind not in EVENT_KINDS:
        raise PlanFormatError(f"{where}: unknown event kind {kind!r} (known: {', '.join(EVENT_KINDS)})")
    ident = file_id(target)
    if ident is None:
        raise PlanFormatError(f"{where}: the id of a {kind} event must be a string, got {target!r}")
    return Event(kind, ident)


__all__ = [
    "Event", "Plan", "COMPUTE", "FREE", "OFFLOAD", "RELOAD", "EVENT_KINDS", "TRANSFERS",
    "compute", "free", "offload", "reload",
]
