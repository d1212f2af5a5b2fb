"""Stage models: recomputation and offloading over discretised timesteps.

One description of the variables and constraints (:mod:`.variables`,
:mod:`.constraints`, :mod:`.objective`, put together by :mod:`.model`) in
the shared linear layer, solved by CP-SAT, HiGHS or CBC; :mod:`.layout`
fixes the stage skeleton and the windows, :mod:`.plans` maps solutions to
SPEC plans and plans to hints, :mod:`.solver` runs the warm-started lazy
loop, :mod:`.methods` registers ``checkmate``, ``poet``, ``stage`` and
``joint``. See ``docs/budget.md``.
"""

from memopt.formulations.stage.layout import FREE, StageLayout, Windows
from memopt.formulations.stage.model import StageModel, build_stage_model
from memopt.formulations.stage.plans import HintError, extract_plan, plan_hint, prune_plan
from memopt.formulations.stage.solver import StageOutcome, solve_stage_model

__all__ = ["FREE", "StageLayout", "Windows", "StageModel", "build_stage_model", "HintError", "extract_plan",
           "plan_hint", "prune_plan", "StageOutcome", "solve_stage_model"]
