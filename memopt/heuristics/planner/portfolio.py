"""Planner runs: one run, the portfolio of runs and restarts, and the evaluator's check of each plan.

:func:`run_planner` is one run (phase 1 then phase 2). :func:`plan_portfolio`
runs every (order, configuration) pair, then randomised restarts of the best
configuration while time allows, and keeps the plan of least evaluated
makespan; every plan goes through the evaluator (an invalid one, a bug, is
recorded and skipped). :func:`plan_under_budget` is the warm start of the
models: the portfolio with a small effort.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.evaluate import schedule_peak
from memopt.core.instance import Instance
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.heuristics.orders import BASELINES
from memopt.heuristics.planner.config import PlannerConfig, default_configs
from memopt.heuristics.planner.order_moves import OrderMoves
from memopt.heuristics.planner.packing import build_plan, pack_stages
from memopt.heuristics.planner.simulation import Simulation, Stuck
from memopt.heuristics.planner.walker import MIN_WALK_SECONDS, Received, Walker, can_walk

if TYPE_CHECKING:
    from memopt.core.method import Context

DEFAULT_WARM_SECONDS = 5.0  # plan_under_budget's default effort (a warm start, not the answer)
DEFAULT_RESTARTS = 20
DEFAULT_METHOD_RESTARTS = 200  # the ``planner`` method (within its time limit; option ``restarts``)
REPAIR_STEPS = 16    # windows learned at most by the repair of one order's closest miss
REPAIR_RUNS = 32     # planner runs at most per repair round (one after each configuration's pass without a plan)
REPAIR_HORIZON = 64  # positions of the order a learned window may span


DEFAULT_CONFIG = PlannerConfig()
MIN_STALE_MOVES = 50
"""The moves of the best order end after max(this, n tasks) in a row without a better plan (on ResNet-18's
training graph with Adam, 519 tasks, the longest such run before an improvement was about 30)."""


def default_moves(req: Request, deadline: Deadline | float | None) -> int:
    """How many moves of the best plan's order a time-limited portfolio makes by default: with offloading, as
    many as the time allows (there the planner's plan is the answer, and the models past it often cannot run:
    POET's model of ResNet-18 training would take 139 s to build); none otherwise (the models improve on the
    planner's plan more) or without a time limit (the search would not end)."""
    return 10**9 if req.offload and not req.pure and as_deadline(deadline).limited else 0


def run_planner(req: Request, order: Sequence[int], cfg: PlannerConfig = DEFAULT_CONFIG,
                deadline: Deadline | None = None, stuck: list[Stuck] | None = None) -> Plan | None:
    """One planner run: phase 1 with ``cfg`` on ``order``, then phase 2. ``None`` when stuck (or out of time).

    The plan is *not* checked here; :func:`plan_portfolio` checks every plan
    with the evaluator. ``stuck`` receives the reason of a run that stopped in phase 1.
    """
    inst = req.instance
    if req.pure or req.budget is None:
        if req.budget is None or schedule_peak(inst, order) <= req.budget:
            return Plan.from_order(inst, order)
        return None
    try:
        lp = Simulation(req, order, cfg, deadline).run()
    except Stuck as e:
        if stuck is not None:
            stuck.append(e)
        return None
    except RecursionError:
        return None
    stages = pack_stages(lp, req.budget, deadline=deadline)
    if stages is None:
        return None
    return build_plan(inst, lp, stages)


def keep_candidates(e: Stuck, horizon: int = REPAIR_HORIZON) -> list[tuple[int, int, int]]:
    """What a run stuck for want of room may have done wrong: the windows in which to keep a datum resident.

    A run gets stuck when, to bring back a datum it evicted, it must
    recompute a chain of others under a full memory. Each datum of that
    chain that an eviction dropped after it was made resident a short while
    before (at most ``horizon`` positions of the order earlier) is a
    candidate: ``(datum, from, to)``, the window from where it last became
    resident to where the run got stuck, in which a next run must not evict
    it once resident. (Keeping the whole chain would hold more than evicting
    it saves: the repair tries them one at a time.)
    """
    if e.at is None:
        return []
    return [(d, made, e.at) for d, made in e.chain if 0 <= e.at - made <= horizon]


def candidate_orders(inst: Instance, limit: int = 5,
                     extra: Iterable[tuple[str, Sequence[int]]] = ()) -> list[tuple[str, list[int]]]:
    """Distinct orders to try, lowest pure peak first: ``extra`` (e.g. the least-peak order) and the baselines."""
    found: list[tuple[int, str, list[int]]] = []
    seen: set[tuple[int, ...]] = set()
    named = [(name, list(o)) for name, o in extra] + [(name, list(fn(inst))) for name, fn in BASELINES.items()]
    for name, o in named:
        key = tuple(o)
        if key in seen:
            continue
        seen.add(key)
        found.append((schedule_peak(inst, o), name, o))
    found.sort(key=lambda x: (x[0], x[1]))
    return [(name, o) for _, name, o in found[:limit]]


@dataclass
class PlannerResult:
    """The best plan of a portfolio run, its evaluation and what produced it."""

    plan: Plan | None
    makespan: float | None = None
    peak: int | None = None
    order: str | None = None
    config: PlannerConfig | None = None
    runs: int = 0
    failures: int = 0
    invalid: list[str] = field(default_factory=list)
    seconds: float = 0.0
    improved_by_restarts: int = 0
    improved_by_moves: int = 0
    sequence: list[int] | None = None
    """The order the restarts and moves start from: the best plan's, or a moved one whose plan is as good."""
    repairs: int = 0  # runs with windows learned from a stuck run (:func:`keep_candidates`)
    pairs_done: int = 0  # (configuration, order) pairs run, in the portfolio's sequence
    seeds_done: int = 0  # randomised restarts run
    moves_done: int = 0  # perturbations of the best plan's order run (:mod:`.order_moves`)
    stale_moves: int = 0  # of them, since the last one that improved the best plan
    walkers: int = 0  # helper processes started (:mod:`.walker`, one per call at most)
    walker_moves: int = 0  # the moves they made
    improved_by_walker: int = 0  # of the improvements counted in ``improved_by_moves``, those a walker found
    spent: dict[str, float] = field(default_factory=dict)
    """Seconds of runs by kind after the first plan: "pair", "restart", "move" (each next run is of the kind
    that has had the least time so far)."""
    nearest: tuple[int, int | None, str, PlannerConfig] | None = None
    """Of the runs stuck for want of room: the least bytes lacking, the first computation it was serving, the
    order and the configuration (what a budget that no run fits misses by, at the closest)."""

    def nearest_text(self, inst: Instance) -> str | None:
        """The closest miss in words (``None`` without one)."""
        if self.nearest is None:
            return None
        over, task, oname, cfg = self.nearest
        where = f" at the first computation of {inst.tasks[task].id!r}" if task is not None else ""
        return f"its closest run ({oname} order, {cfg.label()}) lacked {over} bytes{where}"


def plan_portfolio(req: Request, orders: Iterable[tuple[str, Sequence[int]]] | None = None,
                   configs: Iterable[PlannerConfig] | None = None, *, deadline: Deadline | float | None = None,
                   restarts: int | None = None, moves: int = 0,
                   on_improve: Callable[[Plan, float], None] | None = None,
                   resume: PlannerResult | None = None, workers: int = 1) -> PlannerResult:
    """Run the planner for every (order, configuration) and keep the least makespan.

    Then, while the ``deadline`` allows (or ``restarts`` times in all), rerun
    the best configuration on its order with randomised scores (±30 %, seeds
    1, 2, …) and keep any improvement. Without a time limit there are no
    restarts unless ``restarts`` asks for them. ``moves`` (at most; 0: none)
    perturbations of the best plan's order (:mod:`.order_moves`) go beside
    the restarts, each rerun with the best configuration: a plan as
    good as the best moves the search to its order (a plateau), a better
    one is the new best; the moves end after
    max(:data:`MIN_STALE_MOVES`, n) in a row without a better plan (small
    graphs: a neighbourhood searched through). With moves and a time limit
    the pairs after the first configuration's pass that found a plan go
    beside them too. Each next run is of the kind (pair, restart, move)
    that has had the least time so far; without a time limit, a restart
    and a move in turn (the same runs whatever the timings). With ``workers`` > 1 (the run's
    threads) a second walker makes moves too, in a helper process
    (:mod:`.walker`), from the best order either has found.

    ``resume``: the result of an earlier call on the same request, orders and
    configurations, which this one continues — its best plan kept, the pairs
    and seeds it ran skipped (a second share of a run's time goes to new runs,
    not to the same first ones again).

    Every plan is checked by the evaluator (``req.evaluate``); an invalid
    one (a bug) is recorded in ``invalid`` and skipped. ``on_improve(plan,
    makespan)`` is called at every improvement (a caller's incumbent).
    """
    t0 = time.perf_counter()
    dl = as_deadline(deadline)
    inst = req.instance
    orders = list(candidate_orders(inst) if orders is None else orders)
    by_name = dict(orders)
    cfgs = list(configs) if configs is not None else default_configs(req)
    res = PlannerResult(None) if resume is None else replace(resume, invalid=list(resume.invalid),
                                                                  spent=dict(resume.spent))
    lb = inst.total_time
    if restarts is None:
        restarts = 10**9 if dl.limited else 0

    misses: list[tuple[int, str, PlannerConfig, Stuck]] = []  # the runs stuck for want of room

    def attempt(oname: str, order: Sequence[int], cfg: PlannerConfig, restart: bool = False,
                moved: bool = False) -> Stuck | None:
        res.runs += 1
        stuck: list[Stuck] = []
        plan = run_planner(req, order, cfg, dl, stuck)
        if plan is None:
            res.failures += 1
            for e in stuck:
                if e.over is not None:
                    misses.append((e.over, oname, cfg, e))
                    if res.nearest is None or e.over < res.nearest[0]:
                        res.nearest = (e.over, e.task, oname, cfg)
            return stuck[0] if stuck else None
        ev = req.evaluate(plan)
        if not ev.valid:
            res.invalid.append(f"{oname} {cfg.label()}: {ev.violation}")
            return None
        if moved and ev.makespan == res.makespan:
            res.sequence = list(order)  # a plateau: the search goes on from there
        if res.makespan is None or ev.makespan < res.makespan:
            res.plan, res.makespan, res.peak, res.order, res.config = plan, ev.makespan, ev.peak, oname, cfg
            res.sequence = list(order)
            res.improved_by_restarts += restart
            res.improved_by_moves += moved
            if walker is not None:
                walker.tell(cfg, order, ev.makespan)
            if on_improve is not None:
                on_improve(plan, ev.makespan)
        return None

    walker: Walker | None = None

    def absorb(found: list[Received]) -> None:
        """The walker's plans: each checked by the evaluator here, a better one taken as a move's."""
        if walker is not None:
            res.invalid += walker.invalid
            walker.invalid.clear()
        for r in found:
            ev = req.evaluate(r.plan)
            if not ev.valid:
                res.invalid.append(f"walker: {ev.violation}")
            elif ev.makespan < res.makespan:
                res.plan, res.makespan, res.peak, res.config = r.plan, ev.makespan, ev.peak, r.config
                res.sequence = r.order
                res.improved_by_moves += 1
                res.improved_by_walker += 1
                res.stale_moves = 0
                if on_improve is not None:
                    on_improve(r.plan, ev.makespan)

    # past its deadline the portfolio still looks for a first plan, for as long again (a first plan is what a
    # warm start is for), never past the run's own limit
    give_up = dl.end + (dl.end - dl.start) if dl.limited else dl.end

    def out_of_time() -> bool:
        return dl.run_expired() or time.perf_counter() > give_up

    repaired: set[tuple[str, PlannerConfig]] = set()

    def repair() -> None:
        """No plan yet: repair the closest miss of each order (the closest first) by learning what to keep."""
        closest: dict[str, tuple[int, str, PlannerConfig, Stuck]] = {}
        for miss in sorted(misses, key=lambda x: (x[0], x[1], x[2].label())):
            if not miss[2].keep and (miss[1], miss[2]) not in repaired:
                closest.setdefault(miss[1], miss)
        # a round takes at most a third of the time left: the next configurations may find a plan as well
        now = time.perf_counter()
        until = now + max(0.0, give_up - now) / 3
        runs = 0
        for _, oname, cfg, e in closest.values():
            repaired.add((oname, cfg))
            for _ in range(REPAIR_STEPS):
                # one window more: the candidate whose run gets furthest (then lacks the least), if further
                # than the run it repairs
                best: tuple[tuple[int, int], PlannerConfig, Stuck] | None = None
                for k in keep_candidates(e):
                    if res.plan is not None or out_of_time() or runs >= REPAIR_RUNS or time.perf_counter() > until:
                        break
                    if k in cfg.keep:
                        continue
                    runs += 1
                    res.repairs += 1
                    tried = replace(cfg, keep=cfg.keep + (k,))
                    e2 = attempt(oname, by_name[oname], tried, False)
                    if e2 is not None and e2.over is not None and e2.at is not None:
                        if best is None or (e2.at, -e2.over) > best[0]:
                            best = ((e2.at, -e2.over), tried, e2)
                if res.plan is not None:
                    return
                if best is None or best[0] <= (e.at, -e.over):
                    break  # no window gets further: the next order
                _, cfg, e = best

    # every order with the first configuration, then the next configuration...: the most useful runs first;
    # while no run has a plan, the repair follows each configuration's pass. With moves and a time limit, the
    # pairs after the first configuration's pass that found a plan go on one at a time beside the restarts and
    # moves (below): on the training graphs the first configuration (or the next two) gave every best pair,
    # and the forty-odd other pairs took 13-90 s before any move ran
    pairs = [(cfg, oname, order) for cfg in cfgs for oname, order in orders]
    if len(cfgs) > 1 and len(orders) > 1:
        # the second configuration on the first order comes second: where each run takes seconds (Llama-2-70B
        # with Adam: 7 s), the first pass over the orders filled a 60 s run's planner share, and the second
        # configuration (early frees) is the better one there (0.4x: 35.3 % above Σ c against 54.7 %)
        pairs.insert(1, pairs.pop(len(orders)))
    interleave = moves > 0 and dl.limited

    def run_pair() -> None:
        cfg, oname, order = pairs[res.pairs_done]
        attempt(oname, order, cfg, False)
        if not dl.run_expired():  # a run the hard limit cut short is not done: a resumed call reruns it
            res.pairs_done += 1

    def nothing_to_beat() -> bool:
        return res.plan is not None and (dl.expired() or req.pure or res.makespan <= lb)

    while res.pairs_done < len(pairs) and not nothing_to_beat() and not out_of_time():
        if interleave and res.plan is not None and res.pairs_done % len(orders) == 0:
            break  # a configuration's pass found a plan: the moves start
        run_pair()
        if res.plan is None and res.pairs_done % len(orders) == 0 and not out_of_time():
            repair()
    neighbourhood = OrderMoves(inst) if moves > 0 else None
    stale_limit = max(MIN_STALE_MOVES, inst.n)

    def moving() -> bool:
        return neighbourhood is not None and res.moves_done < moves and res.stale_moves < stale_limit

    def pairs_left() -> bool:
        return interleave and res.pairs_done < len(pairs)

    # Then the portfolio's next pairs, randomised restarts of the best configuration and moves of its order,
    # each run of the kind that has had the least time so far, while time remains: a restart's noisy scores
    # make longer runs (ResNet-18 training with Adam at 0.4x: 4x a move's), and equal counts gave the moves a
    # sixth of the time
    spent = res.spent
    if (workers > 1 and moving() and res.plan is not None and not req.pure and res.makespan > lb
            and dl.limited and dl.remaining() >= MIN_WALK_SECONDS and can_walk()):
        res.walkers += 1
        walker = Walker(req, res.config, res.sequence, res.makespan, dl, stream=res.walkers,
                        stale_limit=stale_limit, run=run_planner)
    try:
        while res.plan is not None and not req.pure and res.makespan > lb and not dl.expired():
            if walker is not None:
                absorb(walker.received())
            kinds = [k for k, ok in (("pair", pairs_left()), ("restart", res.seeds_done < restarts),
                                     ("move", moving())) if ok]
            if not kinds:
                if walker is not None and walker.alive:
                    absorb(walker.wait(dl.end))  # this search is done: the walker's may not be
                    continue
                break
            if dl.limited:
                kind = min(kinds, key=lambda k: spent.get(k, 0.0))
            else:  # (without a time limit, a restart and a move in turn: the same runs whatever the timings)
                kind = min(kinds, key=lambda k: res.seeds_done if k == "restart" else res.moves_done)
            t1 = time.perf_counter()
            if kind == "pair":
                run_pair()
            elif kind == "restart":
                seed = res.seeds_done + 1 + 1000 * res.config.seed
                attempt(res.order, res.sequence, replace(res.config, noise=0.3, seed=seed), restart=True)
                if not dl.run_expired():
                    res.seeds_done += 1
            else:
                # (one generator per move: a resumed search makes the moves one longer call would)
                rng = random.Random(1_000_003 * (res.moves_done + 1) + res.config.seed)
                before = res.makespan
                attempt(res.order, neighbourhood.perturb(res.sequence, rng), res.config, moved=True)
                if not dl.run_expired():
                    res.moves_done += 1
                    res.stale_moves = 0 if res.makespan < before else res.stale_moves + 1
            spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - t1
    finally:
        if walker is not None:
            found = walker.close()
            res.walker_moves += walker.moves
            if res.plan is not None:
                absorb(found)
    res.seconds = time.perf_counter() - t0
    return res


def continue_portfolio(req: Request, ctx: Context, orders: Iterable[tuple[str, Sequence[int]]] | None,
                       configs: Iterable[PlannerConfig] | None, *, deadline: Deadline, restarts: int,
                       moves: int = 0, on_improve: Callable[[Plan, float], None] | None = None) -> PlannerResult:
    """:func:`plan_portfolio` for a share of a run, continuing the portfolio this run already made for ``req``
    (kept by the run's warm starts): a later share goes to new runs, not to the same first ones again. The
    run's threads are the portfolio's workers (a walker process beside it, :mod:`.walker`)."""
    prev = ctx.warm.portfolio(req) if ctx.warm is not None else None
    res = plan_portfolio(req, orders, configs, deadline=deadline, restarts=restarts, moves=moves,
                         on_improve=on_improve, resume=prev, workers=ctx.threads)
    if ctx.warm is not None:
        ctx.warm.keep_portfolio(req, res)
    return res


def plan_under_budget(req: Request, order: Sequence[int] | None = None, *, orders=None,
                      deadline: Deadline | float | None = None, restarts: int = DEFAULT_RESTARTS,
                      score: str | None = None, transfer_weight: float | None = None,
                      on_improve: Callable[[Plan, float], None] | None = None) -> Plan | None:
    """A valid plan with peak ≤ ``req.budget``, or ``None`` when the planner finds none.

    ``order``: the order of first computations (task indices); else
    ``orders`` (named orders), else the baseline orders, lowest
    pure-schedule peak first. ``score`` and ``transfer_weight`` fix one
    configuration instead of the portfolio. ``deadline`` bounds the
    portfolio (default: :data:`DEFAULT_WARM_SECONDS` from now) — past it,
    the runs stop at the first plan found; ``restarts`` randomised reruns
    of the best configuration follow, within the same time. Uses only what
    ``req`` allows. Every returned plan was accepted by the evaluator.
    """
    if req.budget is None:
        raise ValueError("plan_under_budget needs a request with a budget")
    if order is not None:
        orders = [("given", list(order))]
    configs = None
    if score is not None or transfer_weight is not None:
        configs = [PlannerConfig(score=score or "lookahead",
                                 transfer_weight=1.0 if transfer_weight is None else float(transfer_weight))]
    dl = Deadline(DEFAULT_WARM_SECONDS) if deadline is None else as_deadline(deadline)
    return plan_portfolio(req, orders, configs, deadline=dl, restarts=restarts, on_improve=on_improve).plan


__all__ = ["DEFAULT_METHOD_RESTARTS", "DEFAULT_RESTARTS", "DEFAULT_WARM_SECONDS", "PlannerResult",
           "candidate_orders", "continue_portfolio", "default_moves", "keep_candidates", "plan_portfolio",
           "plan_under_budget", "run_planner"]
