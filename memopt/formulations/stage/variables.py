"""The variables of a stage model, created only inside their windows.

For a layout of ``T`` stages (:mod:`.layout`) and every stage ``t``:

========================  ====================================================
``R[t,u]``                recompute ``u`` in its σ slot of stage ``t``
``N[t,v]``                ``v`` is the new task of the FREE stage ``t``
``F[t,d]``                ``d`` is in fast memory at the start of stage ``t``,
                          after its leading frees (``t = T``: at the end)
``O[t,d]``, ``L[t,d]``    offload / reload ``d`` in stage ``t``
``X[t,d,k]``              free ``d`` right after slot ``k`` of stage ``t``
``U[t,k]``                memory after the compute of slot ``k`` (before its
                          frees, without its workspace)
``Z[t,d]``                ``d`` is live at the new task of stage ``t``
``D[t]``                  duration of stage ``t`` when it may transfer data
``P``                     the peak (objective ``peak`` only)
========================  ====================================================

``R``, ``N``, ``F``, ``O``, ``L``, ``X`` are Checkmate's R, S, FREE and
POET's page-in/page-out; ``N`` is this project's addition (scheduling as a
decision). A stage's slots are its recomputation candidates in σ order and,
last, its new task.

Sizes and workspaces are divided by their GCD and times by theirs (exact);
transfer times are expressed in the same unit, scaled by an integer ``τ``
so that every coefficient is an integer (rounded up, i.e. conservatively,
only when τ would exceed 10^6).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

from memopt.backends.linear import LinearModel
from memopt.core.instance import Instance
from memopt.formulations.stage.layout import FREE, StageLayout, Windows
from memopt.transforms.scaling import size_gcd, time_gcd

Term = tuple[int, float]
CONST = -1  # the index of the constant 1 in a list of terms


class Scale:
    """The integer units of a model: memory ÷ ``mem``, time × ``time_num / time_den``.

    ``transfer[d]`` is the (integer) transfer time of ``d`` in model units;
    ``exact_time`` says whether it is exact (else rounded up).
    """

    def __init__(self, inst: Instance, offload: bool):
        self.mem = size_gcd(inst)  # the one gcd scaling (memopt.transforms.scaling)
        gc = time_gcd(inst)
        self.exact_time = True
        beta = inst.machine.bandwidth
        tau = 1
        if offload and beta is not None and not math.isinf(beta):
            b = Fraction(repr(beta)) if isinstance(beta, float) else Fraction(beta)
            for s in inst.size:
                q = (Fraction(s) / (b * gc)).denominator
                tau = tau * q // math.gcd(tau, q)
                if tau > 10**6:
                    tau, self.exact_time = 1, False
                    break
            self.transfer = [math.ceil(Fraction(s) * tau / (b * gc)) for s in inst.size]
        else:
            self.transfer = [0] * inst.m
        self.tau = tau
        self.gc = gc
        self.time = [c // gc * tau for c in inst.time]

    def real_time(self, x: float) -> float:
        """A model duration in the instance's time unit."""
        return x * self.gc / self.tau

    def model_time(self, x: float) -> float:
        """An instance duration in model units (not rounded)."""
        return x * self.tau / self.gc


class StageVariables:
    """Creates the variables of a stage model and answers "which variable is ...?".

    Missing keys mean the variable is outside its window (its value is 0).
    """

    def __init__(self, lm: LinearModel, inst: Instance, layout: StageLayout, win: Windows,
                 scale: Scale, *, cap: int, offload: bool):
        self.lm, self.inst, self.layout, self.win, self.scale = lm, inst, layout, win, scale
        T = layout.T
        self.T = T
        self.R: dict[tuple[int, int], int] = {}
        self.N: dict[tuple[int, int], int] = {}
        self.F: dict[tuple[int, int], int] = {}
        self.O: dict[tuple[int, int], int] = {}
        self.L: dict[tuple[int, int], int] = {}
        self.X: dict[tuple[int, int, int], int] = {}
        self.U: dict[tuple[int, int], int] = {}
        self.Z: dict[tuple[int, int], int] = {}
        self.D: dict[int, int] = {}
        self.P: int | None = None
        #: add the objective cutoff as a row (else the cutoff only fixes variables; the hint is the incumbent)
        self.cutoff_row = False
        #: stages whose recomputation slots have their memory rows (add_detailed_memory)
        self.detailed: set[int] = set()
        self.start_terms: dict[int, list] = {}
        #: keys of the chain cuts added (:mod:`.cuts`)
        self.chain_cuts: set = set()
        #: the LP relaxation kept between cut rounds (:class:`~memopt.backends.linear.Relaxation`)
        self.relaxation = None
        #: the LP relaxation did not finish within its share once: no more cut rounds
        self.cuts_given_up = False
        #: slots[t]: the tasks of the recomputation slots of stage t, then the new task (or FREE)
        self.slots: list[list[int]] = []
        for t in range(T):
            for u in win.recompute[t]:
                self.R[t, u] = lm.binary(f"R[{t},{u}]")
            for v in win.candidates[t]:
                self.N[t, v] = lm.binary(f"N[{t},{v}]")
            s = list(win.recompute[t])
            if layout.new[t] is not None:
                s.append(layout.new[t])
            self.slots.append(s)
        for d in range(inst.m):
            lo, hi = win.resident[d]
            forced = self._forced_until(d, offload)
            for t in range(max(lo, 0), min(hi, T) + 1):
                # CONST: d is certainly resident (see _forced_until); no variable
                self.F[t, d] = CONST if t <= forced else lm.binary(f"F[{t},{d}]")
            if offload:
                lo, hi = win.offload_window[d]
                for t in range(max(lo, 0), min(hi, T - 1) + 1):
                    self.O[t, d] = lm.binary(f"O[{t},{d}]")
                lo, hi = win.reload_window[d]
                for t in range(max(lo, 0), min(hi, T - 1) + 1):
                    self.L[t, d] = lm.binary(f"L[{t},{d}]")
        self.cap = cap
        # users[t][d]: slot indices of stage t that produce or read d
        self._users: list[dict[int, list[int]]] = []
        inputs, outputs = inst.inputs, inst.outputs
        for t in range(T):
            us: dict[int, list[int]] = {}
            for k, u in enumerate(self.slots[t]):
                tasks = win.candidates[t] if u == FREE else [u]
                ds: set[int] = set()
                for v in tasks:
                    ds.update(inputs[v])
                    ds.update(outputs[v])
                for d in ds:
                    us.setdefault(d, []).append(k)
            self._users.append(us)

    def _forced_until(self, d: int, offload: bool) -> int:
        """The last stage up to which ``d`` is certainly resident (-1: none known).

        In a fixed layout, a datum that can be neither regenerated (its
        producer is never recomputed) nor reloaded must stay in fast memory
        from its production to the first computation of its last consumer —
        to the end for a result.
        """
        win, inst = self.win, self.inst
        if self.layout.free:
            return -1
        if offload and win.offload_window[d][0] <= win.offload_window[d][1]:
            return -1
        if win.can_recompute[inst.producer[d]]:
            return -1
        if not inst.consumers[d]:
            return self.T
        return max(win.latest[c] for c in inst.consumers[d])

    # ------------------------------------------------------------ helpers
    def users(self, t: int, d: int) -> list[int]:
        """Slots of stage ``t`` whose task may produce or read ``d``."""
        return self._users[t].get(d, [])

    def computed(self, t: int, v: int) -> list[Term]:
        """Terms of "``v`` is computed in stage ``t``" (recomputed or new)."""
        out: list[Term] = []
        if (t, v) in self.R:
            out.append((self.R[t, v], 1))
        if (t, v) in self.N:
            out.append((self.N[t, v], 1))
        if self.layout.new[t] == v:
            out.append((CONST, 1))
        return out

    def slot_on(self, t: int, k: int) -> list[Term]:
        """Terms of "slot ``k`` of stage ``t`` computes"."""
        u = self.slots[t][k]
        if k == len(self.slots[t]) - 1 and self.layout.new[t] is not None:
            return [(CONST, 1)]  # a task-starting stage always starts its task
        return [(self.R[t, u], 1)]

    def slot_reads(self, t: int, k: int, d: int) -> list[Term]:
        """Terms of "slot ``k`` of stage ``t`` computes a consumer of ``d``"."""
        u = self.slots[t][k]
        if u == FREE:
            return [(self.N[t, c], 1) for c in self.inst.consumers[d] if (t, c) in self.N]
        if d in self.inst.inputs[u]:
            return self.slot_on(t, k)
        return []

    def slot_sum(self, t: int, k: int, per_task: list[int] | tuple[int, ...]) -> list[Term]:
        """Terms of Σ per_task[v] over the task computed in slot ``k`` (0 when idle)."""
        u = self.slots[t][k]
        if u == FREE:
            return [(self.N[t, v], per_task[v]) for v in self.win.candidates[t] if per_task[v]]
        if not per_task[u]:
            return []
        return [(a, c * per_task[u]) for a, c in self.slot_on(t, k)]

    def resident(self, t: int, d: int) -> list[Term]:
        return [(self.F[t, d], 1)] if (t, d) in self.F else []

    def var(self, table: dict, key) -> list[Term]:
        return [(table[key], 1)] if key in table else []

    def slow_before(self, t: int, d: int) -> list[Term]:
        """Terms of "``d`` was offloaded before stage ``t``" (in slow memory at its start)."""
        lo, hi = self.win.offload_window[d]
        return [(self.O[s, d], 1) for s in range(max(lo, 0), min(hi, t - 1) + 1) if (s, d) in self.O]


def add_row(lm: LinearModel, terms: Iterable[Term], lo: float = -math.inf, hi: float = math.inf,
            name: str | None = None) -> None:
    """``lo ≤ Σ terms ≤ hi`` where a term on :data:`CONST` is a constant."""
    const = 0.0
    real: list[Term] = []
    for i, a in terms:
        if i == CONST:
            const += a
        else:
            real.append((i, a))
    lm.add(real, lo - const, hi - const, name)


def neg(terms: Iterable[Term]) -> list[Term]:
    return [(i, -a) for i, a in terms]


__all__ = ["Scale", "StageVariables", "add_row", "neg", "CONST"]
