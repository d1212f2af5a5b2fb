"""The results table: one CSV row per run, the evaluator re-check, resuming.

A row is written only after :func:`recheck` has replayed the plan *as saved
in its file* through the evaluator with the run's budget and limits: a row
whose plan fails is written with status ``error`` and the broken rule,
never as a valid result.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from typing import Any

from memopt.bench.grid import Job, cell, run_key
from memopt.bench.worker import Outcome
from memopt.core.errors import MemoptError
from memopt.core.request import Request
from memopt.core.result import Result, load_plan

#: the columns of a results CSV, in order (docs/experiments.md explains each); the last ones are the run's
#: statistics (memopt.core.result.Statistics), added later: a table without them is upgraded when resumed
COLUMNS = (
    "instance", "instance_file", "instance_hash", "tasks", "objective", "recompute", "offload", "max_makespan",
    "budget", "budget_value", "baseline_peak", "method", "repeat", "threads", "time_limit",
    "status", "value", "bound", "gap", "seconds", "first_plan_seconds", "peak", "makespan",
    "overhead", "plan", "message",
    "stop_reason", "peak_memory", "improvements", "model_vars", "model_rows", "solver_status",
)
STATISTICS_COLUMNS = COLUMNS[COLUMNS.index("stop_reason"):]
STATUSES = ("optimal", "feasible", "infeasible", "unknown", "interrupted", "error")

#: the type of each column: rows are text in the file and typed by :func:`typed_row` (one parser for all)
COLUMN_TYPES: dict[str, type] = {
    **dict.fromkeys(COLUMNS, str),
    **dict.fromkeys(("tasks", "budget_value", "baseline_peak", "repeat", "threads", "peak", "peak_memory",
                     "improvements", "model_vars", "model_rows"), int),
    **dict.fromkeys(("max_makespan", "time_limit", "value", "bound", "gap", "seconds", "first_plan_seconds",
                     "makespan", "overhead"), float),
    **dict.fromkeys(("recompute", "offload"), bool),
}


def number(s: Any) -> float | None:
    """A numeric cell (text or number) as a float; ``None`` when empty or not a number."""
    if s is None or s == "":
        return None
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def typed_row(row: dict[str, str]) -> dict[str, Any]:
    """A row with its real types (:data:`COLUMN_TYPES`): ints, floats, booleans, ``None`` for empty cells."""
    out: dict[str, Any] = {}
    for c, v in row.items():
        t = COLUMN_TYPES.get(c, str)
        if v is None or v == "":
            out[c] = None if t is not str else v
        elif t is bool:
            out[c] = v == "true"
        elif t is int:
            f = number(v)
            out[c] = None if f is None else (int(f) if f == int(f) else f)
        elif t is float:
            out[c] = number(v)
        else:
            out[c] = v
    return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def recheck(req: Request, res: Result, plan_file: str | None) -> tuple[str | None, Any]:
    """Replay the run's plan through the evaluator; ``(why it fails or None, evaluation)``.

    With ``plan_file`` the plan is read back from that file (what a user
    will get), else taken from ``res``. It must be valid under the request
    (budget, makespan limit, allowed techniques), and the run's reported
    value, peak and makespan must be the evaluator's; a claimed optimum must
    equal the bound, and the bound may not exceed the value.
    """
    if res.plan is None:
        if res.status in ("optimal", "feasible"):
            return f"status {res.status} without a plan", None
        return None, None
    plan = load_plan(plan_file) if plan_file else res.plan
    ev = req.evaluate(plan, trace=False)
    if not ev.valid:
        return f"evaluator re-check failed: {ev.violation}", ev
    value = req.value(ev)
    for what, claimed, true in (("value", res.value, value), ("peak", res.peak, ev.peak),
                                ("makespan", res.makespan, ev.makespan)):
        if claimed is None or not _close(float(claimed), float(true)):
            return f"evaluator re-check failed: the run reported {what} {claimed}, the evaluator says {true}", ev
    if res.bound is not None and float(res.bound) > float(value) + 1e-9 * max(1.0, abs(float(value))):
        return f"evaluator re-check failed: bound {res.bound} exceeds the value {value}", ev
    if res.status == "optimal" and (res.bound is None or not _close(float(res.bound), float(value))):
        return f"evaluator re-check failed: status optimal but bound {res.bound} != value {value}", ev
    return None, ev


def make_row(job: Job, out: Outcome, *, save_plans: bool = True) -> dict[str, str]:
    """The CSV row of a finished run: saves its plan file, then re-checks it."""
    row: dict[str, Any] = {
        "instance": job.instance, "instance_file": job.instance_file, "instance_hash": job.instance_hash,
        "tasks": job.tasks,
        "objective": job.objective, "recompute": job.recompute, "offload": job.offload,
        "max_makespan": job.max_makespan, "budget": job.budget, "budget_value": job.budget_value,
        "baseline_peak": job.baseline_peak, "method": job.method, "repeat": job.repeat,
        "threads": job.threads, "time_limit": job.time_limit,
    }
    res = out.result
    if res is None or job.request is None:
        row.update(status="error", message=out.error or "no result", seconds=round(out.wall, 4))
        return _text(row)
    st = res.statistics
    row.update(status=res.status, bound=res.bound, seconds=round(res.solve_seconds, 4),
               first_plan_seconds=st.first_plan_seconds, message=res.message, stop_reason=str(st.stop_reason),
               peak_memory=st.peak_memory, improvements=len(st.improvements), model_vars=st.model_vars,
               model_rows=st.model_rows, solver_status=st.solver_status)
    plan_file = None
    try:
        if res.plan is not None and save_plans:
            res.save(job.plan_file)
            plan_file = job.plan_file
        why, ev = recheck(job.request, res, plan_file)
    except Exception as e:  # noqa: BLE001 - a plan that cannot be saved or read back is an error row
        why, ev = f"cannot save or re-read the plan: {e}", None
    if ev is not None:
        row.update(value=job.request.value(ev), peak=ev.peak, makespan=ev.makespan, overhead=round(ev.overhead, 6))
        if res.bound is not None:
            row["gap"] = round(res.gap, 6) if res.gap is not None else None
    if plan_file:
        row["plan"] = plan_file
    if why is not None:
        row["status"] = "error"
        row["message"] = why
    return _text(row)


def _text(row: dict[str, Any]) -> dict[str, str]:
    out = {c: cell(row.get(c)) for c in COLUMNS}
    out["message"] = " ".join(out["message"].split())  # one line per row
    return out


class ResultsTable:
    """A results CSV: its rows so far, resuming, appending.

    Opening an existing file checks its header; rows are keyed by
    :data:`~memopt.bench.grid.KEY_FIELDS` (the last row of a key wins).
    """

    def __init__(self, path: str):
        self.path = path
        self.rows: list[dict[str, str]] = []
        if os.path.exists(path) and os.path.getsize(path) > 0:
            _drop_partial_line(path)
            self.rows = read_rows(path)
            with open(path, newline="") as f:
                header = tuple(next(csv.reader(f), ()))
            if header != COLUMNS:  # a table of an older memopt: rewrite it with today's columns
                self._rewrite(self.rows)

    def done(self, *, retry_errors: bool = False, hashes: dict[str, str] | None = None) -> set[tuple[str, ...]]:
        """Keys of the runs already in the table.

        Without the error rows when retrying, and without the rows of
        instance files whose fingerprint is no longer the one in ``hashes``.
        """
        hashes = hashes or {}
        return {run_key(r) for r in self.rows
                if not (retry_errors and r["status"] == "error")
                and hashes.get(r["instance_file"], r["instance_hash"]) == r["instance_hash"]}

    def check_compatible(self, time_limit: float | None, threads: int, keys: Iterable[tuple[str, ...]]) -> None:
        """Refuse to resume a table made with another time limit or thread count for the same runs."""
        keys = set(keys)
        for r in self.rows:
            if run_key(r) not in keys:
                continue
            for col, now, flag in (("time_limit", time_limit, "--time-limit"), ("threads", threads, "--threads")):
                if r[col] != cell(now):
                    raise MemoptError(
                        f"{self.path}: its runs were made with {flag} {r[col] or 'none'}, not {cell(now) or 'none'}; "
                        f"use the same {flag} to resume, or another --out")

    def drop_errors(self, keys: Iterable[tuple[str, ...]]) -> int:
        """Remove the error rows of ``keys`` (to run them again); rewrites the file."""
        keys = set(keys)
        return self._keep([r for r in self.rows if not (r["status"] == "error" and run_key(r) in keys)])

    def drop_stale(self, hashes: dict[str, str]) -> int:
        """Remove the rows of instance files whose content changed since (``hashes``: file -> fingerprint)."""
        return self._keep([r for r in self.rows
                           if r["instance_file"] not in hashes or r["instance_hash"] == hashes[r["instance_file"]]])

    def _keep(self, keep: list[dict[str, str]]) -> int:
        dropped = len(self.rows) - len(keep)
        if dropped:
            self._rewrite(keep)
        return dropped

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        self.rows = rows
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.path)

    def append(self, row: dict[str, str]) -> None:
        """Write one row now (flushed: an interrupted grid keeps every finished run)."""
        d = os.path.dirname(self.path)
        if d:
            os.makedirs(d, exist_ok=True)
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                w.writeheader()
            w.writerow(row)
        self.rows.append(row)


def _drop_partial_line(path: str) -> None:
    """Cut a last line left without its newline by an interrupted write."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def read_rows(path: str) -> list[dict[str, str]]:
    """The rows of a results CSV, as text; a clear error for a file that is not one."""
    if not os.path.exists(path):
        raise MemoptError(f"{path}: no such file")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = tuple(reader.fieldnames or ())
        missing = [c for c in COLUMNS if c not in header and c not in STATISTICS_COLUMNS]
        if missing:
            raise MemoptError(f"{path}: not a memopt results table (missing column(s) {', '.join(missing)}); "
                              f"use another --out")
        rows = []
        for i, r in enumerate(reader, 2):
            if None in r or any(r.get(c) is None for c in header):
                raise MemoptError(f"{path}: line {i}: wrong number of fields (a truncated write?)")
            if r["status"] not in STATUSES:
                raise MemoptError(f"{path}: line {i}: unknown status {r['status']!r}")
            rows.append({c: r.get(c, "") for c in COLUMNS})
    return rows


__all__ = ["COLUMNS", "COLUMN_TYPES", "STATISTICS_COLUMNS", "STATUSES", "ResultsTable", "make_row", "number",
           "read_rows", "recheck", "typed_row"]
