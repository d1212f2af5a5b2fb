"""One run of the planner: its eviction score, transfer weight and switches; the portfolio's list of them."""

from __future__ import annotations

from dataclasses import dataclass

from memopt.core.request import Request

SCORES = ("lookahead", "belady", "dtr")


@dataclass(frozen=True)
class PlannerConfig:
    """One run of the planner.

    ``score``: eviction score (``lookahead``, ``belady``, ``dtr``);
    ``transfer_weight``: the factor w by which a transfer's time counts
    against a recomputation's (1: at face value; 0: transfers are free);
    ``prefetch``: start reloads early when memory allows;
    ``early_free``: move the free of an evicted datum back to its last use;
    ``keep``: protection windows learned from a stuck run (see
    :func:`~memopt.heuristics.planner.portfolio.keep_candidates`).
    """

    score: str = "lookahead"
    transfer_weight: float = 1.0
    prefetch: bool = True
    early_free: bool = True
    max_recompute_factor: int = 4  # a run gives up beyond this many computes per task (thrashing)
    distance: str = "positions"  # next-use distance in positions of the order, or in compute "time"
    keep_anchors: bool = False  # keep the outputs of tasks that cannot rerun (their descendants stay recomputable)
    noise: float = 0.0  # randomised restarts: each score is multiplied by a factor in [1 - noise, 1 + noise]
    seed: int = 0
    # learned from a stuck run (portfolio's repair): (datum, from, to) — while the first computations at
    # positions from..to of the order are served, the datum is not evicted once resident
    keep: tuple[tuple[int, int, int], ...] = ()

    def label(self) -> str:
        s = f"{self.score}/w={self.transfer_weight:g}"
        if self.distance != "positions":
            s += f"/{self.distance}"
        if self.keep_anchors:
            s += "/anchors"
        if self.keep:
            s += f"/keep={len(self.keep)}"
        if self.noise:
            s += f"/noise={self.noise:g}#{self.seed}"
        if not self.prefetch:
            s += "/no-prefetch"
        if not self.early_free:
            s += "/late-free"
        return s


def default_configs(req: Request) -> list[PlannerConfig]:
    """The portfolio's configurations for a request (most useful first)."""
    if req.pure:
        return [PlannerConfig()]
    weights = [1.0]
    if req.offload:
        weights = [1.0, 0.25, 0.0] if req.recompute else [1.0]
    cfgs = [PlannerConfig(score=s, transfer_weight=w) for w in weights for s in SCORES]
    cfgs.insert(1, PlannerConfig(score="lookahead", distance="time"))
    if req.recompute and not all(req.instance.can_recompute):
        cfgs += [PlannerConfig(score=s, keep_anchors=True) for s in SCORES]
    if req.offload:  # without transfers, prefetching and early frees change nothing
        cfgs.append(PlannerConfig(score="lookahead", transfer_weight=weights[-1], prefetch=False, early_free=False))
        # first: an offloaded datum freed where the room is needed, not right after its last use — each
        # offload then has until that point to run, where early frees make every offload finish as soon as
        # it alone could and the copies pile up on the channel. On large graphs the first configuration is
        # often the only one a warm start's share of the time runs (ResNet-50 training, offloading alone,
        # 0.8x: 16.7 % -> 11.5 % overhead in 15 s; GPT-2 with Adam, both techniques, 0.4x: 21.5 % -> 17.2 %)
        cfgs.insert(0, PlannerConfig(score="lookahead", transfer_weight=weights[0], early_free=False))
    return cfgs


__all__ = ["SCORES", "PlannerConfig", "default_configs"]
