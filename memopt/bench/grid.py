"""The grid of an experiment: instances × budgets × methods × repeats.

A :class:`BenchSpec` says what to run; :func:`build_grid` turns it into
:class:`Job` records, one per run. Every job carries its checked
:class:`~memopt.core.request.Request` (with the instance), so a job is
self-contained: it can be pickled to a worker process or a cluster node that
does not see the instance files.

Methods are never named here: without ``methods``, each request gets
:meth:`memopt.catalog.Catalog.for_request` — every registered method that fits it — so
a formulation registered tomorrow is benchmarked without a change.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.instance import Instance
from memopt.core.request import Request

#: the fields that identify a run in a results table (what resuming skips on)
KEY_FIELDS = ("instance_file", "objective", "recompute", "offload", "max_makespan", "budget", "method", "repeat")


@dataclass
class BenchSpec:
    """What to run.

    ``budgets`` are written as for ``memopt solve --budget``: a size, or a
    ratio of the best baseline order's peak such as ``"0.9x"``, or
    ``"none"`` (objective ``peak`` without any budget, even the machine's);
    an empty list means the instance's own ``machine.budget``. ``methods`` ``None``
    means every registered method that fits each request; with ``fit_only``,
    the named methods that refuse a request (its structure, a missing
    package) are left out of it instead of giving error rows. ``repeat`` runs
    each cell K times with seeds 0..K-1. ``threads`` is what every run may
    use (CP-SAT workers, MILP threads). ``imports`` are modules imported in
    each worker before it solves (to benchmark methods registered outside
    memopt).
    """

    instances: Sequence[str]
    objective: str = "peak"
    budgets: Sequence[str] = ()
    methods: Sequence[str] | None = None
    fit_only: bool = False
    recompute: bool = False
    offload: bool = False
    max_makespan: float | None = None
    time_limit: float | None = None
    repeat: int = 1
    threads: int = 1
    kill_after: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    imports: Sequence[str] = ()
    plan_format: str = "yaml"


@dataclass(frozen=True)
class Job:
    """One run of the grid; ``error`` is set when it cannot even start."""

    instance_file: str
    instance: str
    instance_hash: str  # fingerprint of the instance's content: a changed file is run again
    tasks: int
    objective: str
    recompute: bool
    offload: bool
    max_makespan: float | None
    budget: str  # as written: "0.9x", "1000", or "" for the machine's budget
    budget_value: int | None
    baseline_peak: int | None
    method: str
    repeat: int
    threads: int
    time_limit: float | None
    kill_after: float | None
    plan_file: str
    request: Request | None = None
    options: tuple[tuple[str, Any], ...] = ()
    imports: tuple[str, ...] = ()
    error: str | None = None

    @property
    def key(self) -> tuple[str, ...]:
        """The identity of the run (see :data:`KEY_FIELDS`), as CSV text."""
        return run_key({
            "instance_file": self.instance_file, "objective": self.objective, "recompute": self.recompute,
            "offload": self.offload, "max_makespan": self.max_makespan, "budget": self.budget,
            "method": self.method, "repeat": self.repeat,
        })

    def describe(self) -> str:
        parts = [self.instance, self.method, self.objective]
        if self.budget:
            parts.append(self.budget)
        if self.repeat:
            parts.append(f"#{self.repeat}")
        return " ".join(parts)


def run_key(row: dict[str, Any]) -> tuple[str, ...]:
    """The key of a run from a job's fields or a CSV row (both give the same text)."""
    return tuple(cell(row.get(k)) for k in KEY_FIELDS)


def cell(v: Any) -> str:
    """A value as CSV text: '' for None, true/false, integers without '.0'."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isfinite(v) and v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return repr(v)
    return str(v)


def fingerprint(inst: Instance) -> str:
    """A short hash of an instance's content (tasks, data, machine, name)."""
    import hashlib
    import json

    from memopt.core.instance_file import instance_to_dict

    text = json.dumps(instance_to_dict(inst), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def default_kill_after(time_limit: float | None) -> float | None:
    """The hard-kill margin: a run still alive at 2 × limit + 30 s is stuck."""
    return None if time_limit is None else 2.0 * time_limit + 30.0


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", s).strip("_") or "_"


def instance_folders(files: Sequence[str]) -> dict[str, str]:
    """A plan folder name per instance file: its stem, plus a hash of the path when stems clash."""
    import hashlib

    stems: dict[str, list[str]] = {}
    for f in dict.fromkeys(files):
        stems.setdefault(_safe(os.path.splitext(os.path.basename(f))[0]), []).append(f)
    out = {}
    for stem, fs in stems.items():
        for f in fs:
            out[f] = stem if len(fs) == 1 else f"{stem}-{hashlib.sha1(f.encode()).hexdigest()[:8]}"
    return out


def plan_path(plans_dir: str, instance_file: str, objective: str, recompute: bool, offload: bool,
              max_makespan: float | None, budget: str, method: str, repeat: int, fmt: str = "yaml",
              folder: str | None = None) -> str:
    """Where a run's plan file goes: ``plans_dir/<instance>/<method>-<problem>-r<k>.<fmt>``."""
    stem = folder or os.path.splitext(os.path.basename(instance_file))[0]
    problem = objective + ("+recompute" if recompute else "") + ("+offload" if offload else "")
    if max_makespan is not None:
        problem += f"-T{cell(max_makespan)}"
    if budget:
        problem += f"-{budget}"
    name = f"{_safe(method)}-{_safe(problem)}-r{repeat}.{fmt}"
    return os.path.join(plans_dir, _safe(stem), name)


def build_grid(spec: BenchSpec, instances: dict[str, Instance], plans_dir: str) -> tuple[list[Job], list[str]]:
    """Every run of ``spec``, and notes on cells that no method fits.

    ``instances`` maps each file of ``spec.instances`` to its loaded
    instance. A request that cannot be made (e.g. objective ``time`` without
    a budget, offloading without a bandwidth) becomes one job per method
    with ``error`` set (one job with method ``*`` when ``methods`` is
    ``None``): it is reported as a row, never a crash of the grid.
    """
    from memopt.catalog import CATALOG
    from memopt.heuristics.orders import best_baseline
    from memopt.pipeline import make_request

    if spec.objective not in ("peak", "time"):
        raise MemoptError(f"unknown objective {spec.objective!r}; known: peak, time")
    if spec.repeat < 1:
        raise MemoptError(f"--repeat must be >= 1, got {spec.repeat}")
    if spec.threads < 1:
        raise MemoptError(f"--threads must be >= 1, got {spec.threads}")
    if spec.time_limit is not None and spec.time_limit <= 0:
        raise MemoptError(f"--time-limit must be > 0 seconds, got {spec.time_limit}")
    if spec.plan_format not in ("yaml", "json"):
        raise MemoptError(f"plan format must be yaml or json, got {spec.plan_format!r}")
    jobs: list[Job] = []
    notes: list[str] = []
    if spec.methods is not None and not spec.imports:
        # an unknown method still gets its rows (status error), but say so up front
        known = CATALOG.entries()
        for m in spec.methods:
            if m not in known:
                notes.append(f"unknown method {m!r} (its runs will be error rows); known: {', '.join(sorted(known))}")
    unfit: dict[str, list[str]] = {}  # problem -> instances no registered method fits
    folders = instance_folders(spec.instances)
    budgets = list(dict.fromkeys(str(b).strip() for b in spec.budgets)) or [""]  # each once, in order
    kill_after = spec.kill_after if spec.kill_after is not None else default_kill_after(spec.time_limit)
    options = tuple(sorted(spec.options.items()))
    for path in dict.fromkeys(spec.instances):
        inst = instances[path]
        ref = best_baseline(inst)[1]
        digest = fingerprint(inst)
        for b in budgets:
            err: str | None = None
            req: Request | None = None
            try:
                if b.lower() == "none":  # no budget at all, not even the machine's
                    if spec.objective == "time":
                        raise MemoptError("budget 'none' is for objective peak; objective 'time' needs a budget")
                    # the evaluator falls back on machine.budget when a request has none: drop it there too
                    req = make_request(inst.with_machine(budget=None), spec.objective,
                                       max_makespan=spec.max_makespan, recompute=spec.recompute,
                                       offload=spec.offload)
                else:
                    req = make_request(inst, spec.objective, budget=b or None, max_makespan=spec.max_makespan,
                                       recompute=spec.recompute, offload=spec.offload)
            except MemoptError as e:
                err = str(e)
            if spec.methods is not None:
                names = list(dict.fromkeys(spec.methods))
                if spec.fit_only and req is not None:
                    known = CATALOG.entries()
                    names = [m for m in names if m in known and known[m].refuse(req) is None]
                    if not names:
                        unfit.setdefault(_problem(spec, b), []).append(path)
            elif req is not None:
                names = CATALOG.for_request(req)
                if not names:
                    unfit.setdefault(_problem(spec, b), []).append(path)
            else:
                names = ["*"]
            for name in names:
                for k in range(spec.repeat):
                    jobs.append(Job(
                        instance_file=path, instance=inst.name, instance_hash=digest, tasks=inst.n,
                        objective=spec.objective,
                        recompute=spec.recompute, offload=spec.offload, max_makespan=spec.max_makespan,
                        budget=b, budget_value=None if req is None else req.budget, baseline_peak=ref,
                        method=name, repeat=k, threads=spec.threads, time_limit=spec.time_limit,
                        kill_after=kill_after,
                        plan_file=plan_path(plans_dir, path, spec.objective, spec.recompute, spec.offload,
                                            spec.max_makespan, b, name, k, spec.plan_format, folders[path]),
                        request=req, options=options, imports=tuple(spec.imports), error=err,
                    ))
    for problem, paths in unfit.items():
        where = paths[0] if len(paths) == 1 else f"{len(paths)} instances"
        which = "none of the given methods" if spec.methods is not None else "no registered method"
        notes.append(f"{which} handles {problem} (on {where})")
    return jobs, notes


def _problem(spec: BenchSpec, budget: str) -> str:
    parts = [f"objective {spec.objective}"]
    if spec.recompute:
        parts.append("recompute")
    if spec.offload:
        parts.append("offload")
    if budget:
        parts.append(f"budget {budget}")
    return ", ".join(parts)


__all__ = ["BenchSpec", "Job", "KEY_FIELDS", "build_grid", "run_key", "cell", "plan_path", "default_kill_after",
           "fingerprint"]
