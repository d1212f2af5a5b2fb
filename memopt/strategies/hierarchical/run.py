"""One chain decomposition of a request, its menus of options, and the chain DP's plans.

:class:`ChainRun` holds the structure, the chain, the repeat classes and
the current menu of each group; :meth:`ChainRun.solve` runs the chain DP
on the menu and offers its plan (judged by the evaluator first).
:meth:`ChainRun.enrich` adds options to the representative groups — the
exhaustive tapes (:func:`.options.subset_options`) — and maps them to the
identical groups. Costs are copied between identical groups (they are
isomorphic with the same roles); if the evaluator ever refuses a plan
built on copied costs, every group is measured again and the DP rerun.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from memopt.core.method import Context
from memopt.core.request import Request
from memopt.graph.structure import structure_of
from memopt.strategies.hierarchical.chain import build_chain, check_chain
from memopt.strategies.hierarchical.dp import ChainDP, DPInterrupted, compute_sequence
from memopt.strategies.hierarchical.options import (
    Option,
    group_classes,
    group_ops,
    heuristic_options,
    map_option,
    prune_options,
)
from memopt.strategies.hierarchical.sequence import plan_from_sequence

DP_EPS, DP_CAP, DP_EXACT_GROUPS, DP_EXACT_OPTIONS = 1e-4, 128, 32, 300
"""The chain DP's approximation in a run of more than 32 groups or 300 options: decreases of less than 0.01 %
of the time dropped, at most 128 breakpoints per table entry (Llama-2-70B's shape, 42 groups: 3.4 s instead of
minutes; MobileNetV2 with every tape, 18 groups and 748 options: 69 s exact; the plans still fit). Smaller
chains get the exact DP (GPT-2 small, 25 groups: under a second)."""


class ChainRun:
    """A chain decomposition on ``target`` forward segments and its menus (module docstring)."""

    def __init__(self, req: Request, target: int, annotations: bool, info: dict[str, Any]):
        self.req = req
        inst = req.instance
        self.structure = st = structure_of(inst, target, annotations)
        self.chain = ch = build_chain(inst, st)
        self.info = info
        info.update(structure=st.describe(), chain=ch.describe())
        bad = check_chain(ch)
        self.error = bad[0] if bad else None  # cannot happen by construction: reported, never planned
        self.pos = {v: i for i, v in enumerate(st.order)}
        self.classes = group_classes(ch)
        info["distinct_groups"] = sum(1 for _, f in self.classes if f is None)
        self.ops = [group_ops(ch, g, self.pos) for g in range(ch.k)]
        self.menus: dict[int, list[Option]] = {}  # representative group -> its options
        self.value: float | None = None
        self.sequence: list[int] | None = None

    def representatives(self) -> list[int]:
        return [g for g, (_, f) in enumerate(self.classes) if f is None]

    def enrich(self, make: Callable[[int], list[Option]], deadline) -> bool:
        """Add ``make(g)`` to every representative's menu (pruned) and map the menus; False if out of time."""
        for g in self.representatives():
            if deadline.expired():
                return False
            self.menus[g] = prune_options(self.menus.get(g, []) + make(g))
        self._map(measured=False)
        return True

    def start(self, deadline) -> bool:
        """The first menus: the full tape and the cheapest-first tapes."""
        return self.enrich(lambda g: heuristic_options(self.chain, g, self.pos), deadline)

    def _map(self, measured: bool) -> None:
        for g, (rep, f) in enumerate(self.classes):
            if f is None:
                self.ops[g].options = list(self.menus[g])
            else:
                self.ops[g].options = [map_option(self.chain, g, o, f, self.pos, measure=measured)
                                       for o in self.menus[rep]]

    def solve(self, ctx: Context, label: str, deadline=None) -> float | None:
        """Run the chain DP on the current menus (within ``deadline``, default the run's); offer its plan;
        the plan's makespan (``None``: none)."""
        req, ch, info = self.req, self.chain, self.info
        deadline = deadline or ctx.deadline
        if self.error:
            info["error"] = self.error
            return None
        t0 = time.perf_counter()
        for measured in (False, True):
            if measured:
                self._map(measured=True)
            try:
                exact = ch.k <= DP_EXACT_GROUPS and sum(len(o.options) for o in self.ops) <= DP_EXACT_OPTIONS
                dp = ChainDP(ch, self.ops, req.budget, deadline=deadline, eps=0.0 if exact else DP_EPS,
                             cap=0 if exact else DP_CAP)
            except DPInterrupted:
                info["dp"] = "interrupted"
                return None
            info.update(options=sum(len(o.options) for o in self.ops), breakpoints=dp.breakpoints,
                        dp_seconds=round(time.perf_counter() - t0, 3))
            value = dp.value()
            if value is None:
                info["dp"] = "no rotor sequence fits"
                return None
            seq = compute_sequence(self.ops, dp.sequence())
            plan = plan_from_sequence(req.instance, seq)
            ev = req.evaluate(plan)
            info[f"dp_value_{label}"] = value
            if ev.valid:
                if self.value is None or ev.makespan < self.value:
                    self.value, self.sequence = ev.makespan, seq
                ctx.offer(plan, f"hierarchical (chain DP, {ch.k} groups, {label})", evaluation=ev)
                return ev.makespan
            # costs copied between isomorphic groups disagree with the evaluator: measure every group
            info["error" if measured else "copied_costs"] = f"invalid plan: {ev.violation}"
        return None


__all__ = ["ChainRun"]
