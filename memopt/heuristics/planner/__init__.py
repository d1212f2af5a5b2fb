"""The budget planner: fit a memory budget by evicting data (the warm start of every time model).

A package of one idea per module: :mod:`.config` (one run's settings),
:mod:`.simulation` (phase 1), :mod:`.packing` (phase 2), :mod:`.portfolio`
(runs, restarts, the evaluator's check), :mod:`.order_moves` (moves of
the best plan's order, searched while time remains), :mod:`.method` (the catalog's
``planner`` method), :mod:`.reloads` (a recomputation-only plan's
recomputations turned into reloads, packed by phase 2).

Given an order of *first* computations, :func:`plan_under_budget` builds a
SPEC plan whose peak stays within the budget M, using only what the request
allows (recomputation, offloading, or neither). It works in two phases.

**Phase 1, eviction** (:class:`.simulation.Simulation`). The tasks run in the given
order. Before a compute, its missing inputs are brought back (reloaded from
slow memory, or recomputed: their producer runs again, which needs *its*
inputs, recursively); then, while the memory of the compute would exceed M,
a resident datum that no pending compute pins is *evicted*:

- a datum nobody needs any more is freed (this happens eagerly anyway);
- a datum with a copy in slow memory is freed (it comes back by a reload);
- otherwise it is *offloaded* then freed, or *dropped* (freed, to be
  recomputed), whichever is cheaper: an offload costs ``w·2·s(d)/β`` (out
  and back), a drop costs the time of recomputing its producer plus the
  evicted inputs that recomputation needs, recursively (the "evicted
  neighbourhood" e* of DTR). ``w`` (``transfer_weight``) discounts transfers,
  which mostly run hidden beside the computes (SPEC §2: a stage lasts
  max(compute, transfer)).

Which datum is evicted is decided by a score (``score=``):

- ``"lookahead"`` (default): the smallest cost / (size × distance to the
  next use), the distance measured in positions of the order. With equal
  costs per byte this is Belady's farthest-next-use rule (Belady 1966);
  with recomputation it weighs what the eviction costs;
- ``"belady"``: the farthest next use (ties: the larger datum), ignoring cost;
- ``"dtr"``: the smallest cost / (size × staleness), staleness being the
  number of computes since the datum was last used — the heuristic of
  Dynamic Tensor Rematerialization (Kirisame et al., ICLR 2021), which does
  not look ahead.

A datum is dropped only if it can be recomputed later: its producer may run
again and every input of the producer is resident, in slow memory, or
itself recomputable (an invariant kept for every dropped datum that is
still needed). Freed data are freed as early as possible (right after
their last use) and reloads are prefetched as far back as the memory
allows and the transfer needs, so that transfers can hide behind computes.
Each transfer is booked on the channel behind the computes it hides
behind, and a later one counts only the compute time left
(:meth:`.simulation.LogicalPlan.book`): an offload freed early is kept
until that time covers its copy, a reload prefetched until it does.

**Phase 2, stage packing** (:func:`.packing.pack_stages`). Phase 1 yields a sequence of
computes (with the memory at every compute and between computes) and a
list of transfers, each with a window of stages where it may run (an
offload after its datum is resident and before it is freed, a reload after
the offload and the free and before the first use). The transfers go
through the channel in earliest-deadline order; a dynamic program over
(computes placed, transfers placed) chooses the stages — several computes
and several transfers per stage where that hides the transfers — minimising
Σ max(Σ c, Σ s/β), subject to the exact memory of every stage (a reload
holds its memory from the start of its stage; an offloaded datum stays
resident until the stage after its offload). Placing each transfer alone
in its own stage is always a feasible path, so phase 2 never fails where
phase 1 succeeded. Two exact speed-ups keep it to seconds on a 70B model's
training step: a stage's cost offered to a whole run of rows at once, and
states not extended when one with more transfers placed costs no more.

**Repair** (:func:`.portfolio.keep_candidates`). A run with recomputation
may get stuck: to bring back a datum it evicted, it must recompute a chain
of others, and the memory is full. Eviction decides one datum at a time
and cannot see that evicting, say, a residual block's input on the way into
the block's backward makes every later recomputation of the block's tapes
rebuild that input from the block before (ResNet-50's training step at
0.4× its traced peak: every configuration stuck 2.8 MB short or more). When no
run of a configuration's pass found a plan, the portfolio repairs the
closest miss of each order: each datum of the stuck chain that an eviction
dropped shortly before is a candidate *window* — keep it resident from
where it last became resident to where the run got stuck — and the run is
repeated with each candidate; the one that gets furthest is kept, and the
repair goes on from its own failure until a run fits, no window gets
further, or its effort (runs, a third of the time left) is spent.

**Guarantees.** Every returned plan has been accepted by the evaluator
with the request's budget and techniques. A plan is always found when the
budget is at least the order's pure-schedule peak (it is that schedule, no
overhead), and, with offloading and enough slow memory, whenever the budget
is at least the task footprint bound max_v (inputs + outputs + workspace)
(every datum can then be offloaded, and the ``transfer_weight=0`` run of the
portfolio evicts by offloading only). With recomputation only a plan may not
be found near the lowest feasible budget (that question is PSPACE-hard in
general: it contains pebbling).

**Complexity.** Phase 1 is O(E · R · D) for E evictions, R resident data and
D the depth of the recompute-cost recursion (memoised per eviction);
phase 2 visits O(K · W) states for K computes and W transfers live at
once. :func:`plan_under_budget` runs a small portfolio (orders × scores ×
transfer weights, with and without *anchors* — see :class:`PlannerConfig`),
then randomised restarts of the best run (alternating, with offloading
and a time limit, with moves of its order), and keeps the plan with the
least evaluated makespan. The whole design is documented in
``docs/planner.md``.
"""

from memopt.heuristics.planner.config import SCORES, PlannerConfig, default_configs
from memopt.heuristics.planner.order_moves import OrderMoves
from memopt.heuristics.planner.portfolio import (
    DEFAULT_METHOD_RESTARTS,
    DEFAULT_RESTARTS,
    DEFAULT_WARM_SECONDS,
    PlannerResult,
    candidate_orders,
    continue_portfolio,
    default_moves,
    keep_candidates,
    plan_portfolio,
    plan_under_budget,
    run_planner,
)
from memopt.heuristics.planner.reloads import offload_recomputations

__all__ = ["DEFAULT_METHOD_RESTARTS", "DEFAULT_RESTARTS", "DEFAULT_WARM_SECONDS", "SCORES", "OrderMoves",
           "PlannerConfig", "PlannerResult", "candidate_orders", "continue_portfolio", "default_configs",
           "default_moves", "keep_candidates",
           "offload_recomputations", "plan_portfolio",
           "plan_under_budget", "run_planner"]
