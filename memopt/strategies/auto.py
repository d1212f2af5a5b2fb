"""``auto``: the best route for the request — ``auto-peak`` for the pure peak, ``auto-time`` otherwise.

Both are reached through the catalog the run was given (never a global
lookup); the options of ``auto`` are handed to the strategy that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memopt.core.errors import MemoptError
from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.request import Request
from memopt.core.status import Objective


@dataclass(frozen=True)
class AutoParams(Params):
    model: Literal["stage", "joint", "checkmate", "poet", "moccasin"] | None = option(
        None, "time requests: the one model to hand the warm start to (default: by the request's kind and size)")
    backend: Literal["cpsat", "highs", "cbc"] = option("cpsat", "time requests: solver of the stage models")
    max_states: int | None = option(None, "pure peak: states of the down-set search")
    max_beam: int = option(256, "pure peak: widest beam of the beam-search phase")


def run_auto(req: Request, ctx: Context) -> MethodOutput:
    """Choose a method: auto-peak for the pure peak, auto-time for every other request."""
    p: AutoParams = ctx.params
    if req.objective == Objective.PEAK and req.pure:
        if p.model is not None:
            raise MemoptError("auto: option model applies to objective time (or peak with --recompute/--offload)")
        out = ctx.run("auto-peak", req, max_states=p.max_states, max_beam=p.max_beam)
        out.method = out.method or "auto-peak"
        return out
    out = ctx.run("auto-time", req, model=p.model, backend=p.backend)
    out.method = out.method or "auto-time"
    return out


__all__ = ["AutoParams", "run_auto"]
