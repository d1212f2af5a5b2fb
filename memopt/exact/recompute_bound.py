"""A lower bound on the recomputation a budget forces: the state at one task's first computation.

**Definition.** Fix a plan (recomputation, no offloading) whose peak is at
most M, and a task v. At v's *first* computation let B be the tasks
computed before (a down-set with anc(v) ⊆ B, B ∩ ({v} ∪ desc(v)) = ∅, as
in :mod:`memopt.exact.cut_bound`), H the data then in memory (produced in
B; inputs(v) ⊆ H) and R the tasks of B computed again afterwards. Then

- Σ_{d ∈ H} s(d) ≤ M − out(v) − w(v) (SPEC §2: the memory at that compute);
- every datum d of a task w ∈ B that is read by a task outside B, or is a
  result, is in H or w ∈ R (it is needed later: kept since, or made again);
- every input d' of a task w ∈ R is in H or its producer is in R (a
  recomputation needs its inputs, and their producers lie in B);
- w ∈ R only if w may be recomputed.

Every task of R runs once more than the plan's first computations, so the
makespan is at least Σ c(v) + OPT(v), where OPT(v) is the least Σ_{w ∈ R}
c(w) over all (B, H, R) meeting these conditions, and at least Σ c(v) +
max_v OPT(v). If no (B, H, R) meets them for some v, no plan fits M at all.

**Computation.** OPT(v) is a small 0-1 program (a variable per task for B,
per datum for H, per task for R; a row per edge) solved by CP-SAT; any
proven bound of it (even at a time limit) keeps the bound valid. Only tasks
whose min-cut memory cut(v) exceeds M can have OPT(v) > 0 (otherwise the
least-memory down-set fits with R = ∅), so the tasks are examined by
decreasing cut(v). On layered-n300-s2 at 0.8× the given order's peak: OPT =
608 at the critical task (0.4 % of Σ c), about a second.

The argument counts the recomputations one moment forces, not those of
several moments: a valid but partial bound. It is ours (a recomputation
analogue of the min-cut bound of docs/peak.md §8).

**At scale: the knapsack relaxation** (:func:`knapsack_bound`). Keep only
the data K(v) that every B must deal with — made by an ancestor of v, and a
result or read by v or a descendant (the lifetime bound's set,
:func:`~memopt.exact.peak_bounds.held_data`) — and drop the rows of R's
inputs. What is left: v's inputs and the data of tasks that cannot rerun
are held (F0); every other producer p either holds its data of K(v)
(S_p) or is recomputed (cost c(p)). So OPT(v) ≥ the least Σ c(p) over the
dropped producers with Σ S_p ≥ X = F0 + Σ S_p − (M − out(v) − w(v)): a
covering knapsack, bounded below by its LP with each S_p capped at X (the
same integer solutions; take the producers by increasing c(p)/min(S_p, X),
the last one fractionally): O(|K(v)| log |K(v)|)
after the O(n + e + m) search for K(v). F0 > M − out(v) − w(v) proves no
plan fits. A program OPT(v) is built only up to :data:`PROGRAM_MAX_TASKS`
tasks (a variable per task and datum); the relaxation runs at every size,
on the tasks by decreasing lifetime estimate, while it can be positive
(held_σ(v) + out(v) + w(v) > M), within :data:`KNAPSACK_WORK` element
visits. Memory O(n + e + m): the n² bitmasks are gone.

**At scale with the recomputation rows: priced moments**
(:func:`~memopt.exact.priced_moments.priced_moment_bound`). The knapsack
drops the rows of R's inputs, so it misses that a recomputation needs its
own inputs, and that an updated parameter (a result made by a task that
can rerun) needs the old one. Pricing memory at λ per byte makes OPT(v)'s
rows a closure problem: min c(R) + λ·s(H) is a minimum cut
(:class:`~memopt.exact.priced_moments.RecomputationNetwork`), and
OPT(v) ≥ mincut(λ) − λ·(M − out(v) − w(v) − in(v)) for every λ ≥ 0 (a
Lagrangian dual: concave in λ, searched over powers of two, then refined).
Up to :data:`PRICED_TASKS` tasks, those of largest knapsack value and of
largest footprint alternately. GPT-2 medium (ATen, Adam) at 0.4× the traced
peak: the knapsack proves 3.4 % of Σ c, the priced moment 14.3 %. Then the
best of them chained with up to :data:`PAIRED_TASKS` others
(:func:`~memopt.exact.priced_moments.chained_moment`: a task run after the
later moment runs after the earlier one; U-Net at 0.4×: 8.85 % → 9.98 %).

**Two moments linked** (step 4, up to :data:`PROGRAM_MAX_TASKS` tasks,
within its own deadline ``pairs``): the 0-1 program of
:mod:`memopt.exact.moment_pairs` for the best moment and up to
:data:`PAIR_PROGRAMS` tasks comparable with it (the best chain's partner
first) — what memory holds at the
later moment was held at the earlier one or made in between, so a
recomputation that must happen twice is paid twice. GPT-2 (ATen, Adam) at
0.4×: 27.0 % of Σ c for one moment, 31.8 % for the pair in 8 s.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import zip_longest

import numpy as np

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.instance import Instance
from memopt.exact.moment_pairs import down_set, moment_pair_program
from memopt.exact.peak_bounds import TaskSearch, held_data, held_estimates
from memopt.exact.priced_moments import RecomputationNetwork, chained_moment, priced_moment
from memopt.graph.csr import GraphArrays, graph_arrays

PROGRAM_MAX_TASKS = 2000
"""Above this many tasks no 0-1 program OPT(v) is built (CP-SAT gets no bound on it in seconds)."""
PRICED_TASKS = 12
"""Tasks given a priced moment (about 19 max-flows each, on n + 2m nodes: 1.4 s for 12 tasks at 2,300 tasks)."""
PAIR_PROGRAMS = 5
"""Pairs of moments given a 0-1 program (:mod:`memopt.exact.moment_pairs`), the best moment with each."""
PAIR_MIN_GAP = 0.01
"""No pair programs when the bound is within this fraction of the best plan's makespan (little left to prove:
U-Net at 0.6x, 0.9 % apart, spent 8 s on pairs that proved nothing more)."""
PAIRED_TASKS = 8
"""Priced tasks paired with the best moment in a chain of two (about 45 max-flows each, on twice the network)."""
KNAPSACK_WORK = 300_000_000
"""Element visits the knapsack relaxation may spend (about 50 tasks at 50,000 tasks and 2.7M arcs)."""


@dataclass
class RecomputeBound:
    """``extra``: a proven lower bound on the recomputation time beyond Σ c(v) (0: none found).

    ``infeasible_at``: a task at whose first computation no state fits the
    budget (then no plan exists); ``values``: OPT(v) bounds per examined task.
    """

    extra: int = 0
    task: int | None = None
    infeasible_at: int | None = None
    values: dict[int, float] = field(default_factory=dict)
    examined: int = 0
    priced: int = 0
    chain: tuple[int, ...] = ()
    seconds: float = 0.0


def moment_program(inst: Instance, v: int, budget: int):
    """The 0-1 program of OPT(v) (module docstring) as a :class:`~memopt.backends.linear.LinearModel`.

    Returns ``None`` when v's own memory (inputs, outputs, workspace) exceeds the budget.
    """
    from memopt.backends.linear import LinearModel

    n = inst.n
    ga = graph_arrays(inst)
    anc, desc = ga.ancestors(v), ga.descendants(v)
    cap = budget - inst.output_size[v] - inst.workspace[v]
    if cap < sum(inst.size[d] for d in inst.inputs[v]):
        return None
    lm = LinearModel(f"moment-{v}")
    # x[w]: w in B — True/False when forced, else a variable index
    desc[v] = True  # v itself runs at the moment, not before it
    x = down_set(lm, inst, anc, desc, "B")
    r = {w: lm.binary(f"R[{w}]") for w in range(n) if x[w] is not False and inst.can_recompute[w]}
    for w, rv in r.items():
        if not isinstance(x[w], bool):
            lm.add_le([(rv, 1), (x[w], -1)], 0)
    h = {}
    for d in range(inst.m):
        p = inst.producer[d]
        if x[p] is False or inst.size[d] == 0:
            continue  # a datum of size 0 can always be held
        h[d] = lm.binary(f"H[{d}]")
        if not isinstance(x[p], bool):
            lm.add_le([(h[d], 1), (x[p], -1)], 0)
    for d in inst.inputs[v]:
        if d in h:
            lm.fix(h[d], 1)
    for d, hd in h.items():
        p = inst.producer[d]
        later = [(hd, 1)] + ([(r[p], 1)] if p in r else [])
        readers = list(inst.consumers[d]) or [None]  # None: a result, needed at the end
        for a in readers:
            xa = False if a is None else x[a]
            if xa is True:
                continue
            # held or made again whenever p is in B and a is not: later >= x[p] - x[a]
            terms, rhs = list(later), 0
            if x[p] is True:
                rhs += 1
            else:
                terms.append((x[p], -1))
            if xa is not False:
                terms.append((xa, 1))
            lm.add_ge(terms, rhs)
    for w, rv in r.items():
        for d in inst.inputs[w]:
            if d not in h:
                continue
            p = inst.producer[d]
            lm.add_ge([(h[d], 1)] + ([(r[p], 1)] if p in r else []) + [(rv, -1)], 0)
    lm.add_le([(hd, inst.size[d]) for d, hd in h.items()], cap)
    lm.minimize([(rv, inst.time[w]) for w, rv in r.items() if inst.time[w]])
    return lm


def knapsack_bound(ga: GraphArrays, inst: Instance, v: int, budget: int) -> int | None:
    """The LP bound of the covering knapsack at v (module docstring), or ``None`` when no plan fits."""
    cap = budget - inst.output_size[v] - inst.workspace[v]
    k = held_data(ga, v)
    if not len(k):
        return None if cap < 0 else 0
    size = ga.size[k]
    prod = ga.prod[k]
    forced = ~np.asarray(inst.can_recompute, dtype=bool)[prod]
    ins = np.zeros(ga.m, dtype=bool)
    ins[ga.in_data[ga.in_ptr[v]:ga.in_ptr[v + 1]]] = True
    forced |= ins[k]
    f0 = int(size[forced].sum())
    if f0 > cap:
        return None
    excess = int(size.sum()) - cap
    if excess <= 0:
        return 0
    p, inv = np.unique(prod[~forced], return_inverse=True)  # producers that may drop their data
    # sizes capped at the excess: the integer solutions are the same and the LP is tighter
    s_p = [min(x, excess) for x in _group_sum(inv, size[~forced], len(p)).tolist()]  # (sizes of K(v) are > 0)
    c_p = [inst.time[u] for u in p.tolist()]
    cost = Fraction(0)
    for c, s in sorted(zip(c_p, s_p), key=lambda cs: Fraction(cs[0], cs[1])):  # exact ratios: a true LP
        if excess <= 0:
            break
        if s <= excess:
            cost += c
            excess -= s
        else:
            cost += Fraction(c * excess, s)
            excess = 0
    return math.ceil(cost)


def _group_sum(inv: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Σ values per group (exact integers)."""
    out = np.zeros(k, dtype=values.dtype)
    np.add.at(out, inv, values)
    return out


def _pair_moments(net: RecomputationNetwork, exps: dict[int, float | None], out: RecomputeBound, budget: int,
                  foot: np.ndarray, deadline: Deadline) -> None:
    """Step 2b: the best priced moment chained with each of up to :data:`PAIRED_TASKS` other priced tasks it
    is comparable with (one an ancestor of the other), from the best moment's price and 0 for the other."""
    if not exps:
        return
    best = max(exps, key=lambda v: out.values.get(v, 0))
    others = sorted((v for v in exps if v != best), key=lambda v: -out.values.get(v, 0))
    for u in others[:PAIRED_TASKS]:
        if deadline.expired():
            return
        if net.ancestors(best)[u]:
            chain, start = [u, best], [None, exps[best]]
        elif net.ancestors(u)[best]:
            chain, start = [best, u], [exps[best], None]
        else:
            continue
        b, _ = chained_moment(net, chain, [budget - int(foot[x]) for x in chain], start, deadline=deadline)
        if b > out.extra:
            out.extra, out.task, out.chain = b, best, tuple(chain)


def _solve_program(lm, out: RecomputeBound, v: int, chain: tuple[int, ...], deadline: Deadline,
                   threads: int) -> bool:
    """CP-SAT on one program; its proven bound raises ``out``. False when it proves that no plan fits."""
    from memopt.backends.linear import solve_linear

    sol = solve_linear(lm, "cpsat", deadline=deadline, threads=threads)
    if sol.status == "infeasible":
        out.infeasible_at = v
        return False
    if sol.bound is not None:
        b = math.ceil(sol.bound - 1e-6)
        if len(chain) == 1:  # ``values`` holds one-moment bounds only
            out.values[v] = max(b, out.values.get(v, 0))
        if b > out.extra:
            out.extra, out.task, out.chain = b, v, chain
    return True


def _pair_programs(inst: Instance, ga: GraphArrays, out: RecomputeBound, budget: int, deadline: Deadline,
                   threads: int) -> None:
    """Step 4: the pair programs of the best moment with up to :data:`PAIR_PROGRAMS` tasks it is comparable
    with — the partner of the best priced chain, then its descendants (a later moment with little room is
    what the link sees), then its ancestors, by decreasing value; each gets an equal share of the time left
    (a program solved early leaves its time to the next)."""
    best = max(out.values, key=lambda v: out.values[v])
    anc, desc = ga.ancestors(best), ga.descendants(best)
    # the partner of the best chain of priced moments first (U-Net at 0.4x: its pair proves 12.2 % of Σ c where
    # the chain proved 10.0 %; the tasks of largest value gave at most 10.7 %)
    partner = [x for x in out.chain if x != best] if len(out.chain) == 2 and best in out.chain else []
    later = sorted((v for v in out.values if desc[v]), key=lambda v: -out.values[v])
    earlier = sorted((v for v in out.values if anc[v]), key=lambda v: -out.values[v])
    others = list(dict.fromkeys(partner + later + earlier))[:PAIR_PROGRAMS]
    for i, u in enumerate(others):
        if deadline.remaining() <= 0.05:
            return
        pair = (best, u) if desc[u] else (u, best)
        lm = moment_pair_program(inst, *pair, budget)
        if lm is None:  # a task alone exceeds the budget: the footprint bound says so
            return
        out.examined += 1
        if not _solve_program(lm, out, best, pair, deadline.share(1 / (len(others) - i)), threads):
            return


def recompute_bound(inst: Instance, budget: int, *, deadline: Deadline | float | None = None, max_tasks: int = 8,
                    orders: list[list[int]] | None = None, threads: int = 2,
                    work: int = KNAPSACK_WORK, pairs: Deadline | None = None,
                    best: float | None = None) -> RecomputeBound:
    """max over the examined tasks v of a proven bound on OPT(v) (module docstring).

    First the knapsack relaxation, on the tasks by decreasing lifetime
    estimate while it can be positive (``work`` element visits at most).
    Then the priced moments of up to :data:`PRICED_TASKS` tasks, and the best
    of them chained with others (:data:`PAIRED_TASKS`). Then, up to
    :data:`PROGRAM_MAX_TASKS` tasks, the programs OPT(v) of the
    tasks by decreasing min-cut memory, only those above the budget, at most
    ``max_tasks``, until ``deadline``. Then, until ``pairs`` (a deadline; none: no pairs), unless the
    bound is already within :data:`PAIR_MIN_GAP` of ``best`` (a plan's makespan), the programs of
    pairs of moments (:mod:`memopt.exact.moment_pairs`). A program without
    solution or a forced memory above the budget proves the budget
    infeasible (``infeasible_at``).
    """
    from memopt.exact.cut_bound import cut_bound

    t0 = time.perf_counter()
    out = RecomputeBound()
    deadline = as_deadline(deadline)
    if inst.n == 0:
        return out
    ga = graph_arrays(inst)
    if ga.dtype is object:
        return out
    # 1. the knapsack relaxation
    est = held_estimates(ga, inst) + ga.out_size + ga.workspace
    cand = np.flatnonzero(est > budget)
    cand = cand[np.argsort(-est[cand], kind="stable")]
    # half the time at most: the priced moments that follow are stronger where the knapsack is weak
    # (Llama-2-70B's shape with views: the knapsack alone used the whole 3 s)
    search = TaskSearch(ga, work, deadline.share(0.5))
    for v in cand.tolist():
        if not search.take():
            break
        out.examined += 1
        b = knapsack_bound(ga, inst, v, budget)
        if b is None:
            out.infeasible_at = v
            break
        out.values[v] = b
        if b > out.extra:
            out.extra, out.task = b, v
    # 2. the priced moments, at the tasks of largest knapsack value and of largest footprint, alternately
    if out.infeasible_at is None:
        foot = ga.in_size + ga.out_size + ga.workspace
        by_value = sorted(out.values, key=lambda v: -out.values[v])
        by_foot = [int(v) for v in cand[np.argsort(-foot[cand].astype(float), kind="stable")]]
        order = [v for pair in zip_longest(by_value, by_foot) for v in pair if v is not None]
        net = RecomputationNetwork(ga, inst)
        exps: dict[int, float | None] = {}
        for v in list(dict.fromkeys(order))[:PRICED_TASKS]:
            room = budget - int(foot[v])
            if deadline.expired():
                break
            if room < 0:  # v alone exceeds the budget (the footprint bound says so before any solve)
                continue
            b, exps[v] = priced_moment(net, v, room, deadline=deadline)
            out.priced += 1
            out.values[v] = max(b, out.values.get(v, 0))
            if b > out.extra:
                out.extra, out.task = b, v
        _pair_moments(net, exps, out, budget, foot, deadline)
    if out.infeasible_at is not None or inst.n > PROGRAM_MAX_TASKS:
        out.seconds = time.perf_counter() - t0
        return out
    # 3. the programs OPT(v)
    cb = cut_bound(inst, orders or [list(inst.topological_order)], floor=budget, min_flows=max_tasks,
                   deadline=deadline)
    cand2 = sorted((v for v, c in cb.values.items() if c > budget), key=lambda v: -cb.values[v])[:max_tasks]
    for v in cand2:
        if deadline.remaining() <= 0.05:
            break
        out.examined += 1
        lm = moment_program(inst, v, budget)
        if lm is None:
            out.infeasible_at = v
            break
        if not _solve_program(lm, out, v, (v,), deadline, threads):
            break
    # 4. the programs of pairs: the best moment with the tasks of largest values it is comparable with
    close = best is not None and inst.total_time + out.extra >= (1 - PAIR_MIN_GAP) * best
    if pairs is not None and out.infeasible_at is None and out.values and not close:
        _pair_programs(inst, ga, out, budget, pairs, threads)
    out.seconds = time.perf_counter() - t0
    return out


__all__ = ["KNAPSACK_WORK", "PAIR_MIN_GAP", "PAIR_PROGRAMS", "PAIRED_TASKS", "PRICED_TASKS", "PROGRAM_MAX_TASKS",
           "RecomputeBound", "knapsack_bound", "moment_program", "recompute_bound"]
