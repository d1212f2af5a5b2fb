"""Run a grid into a results CSV: :func:`run_bench`.

1. load the instances and build the grid (:func:`~memopt.bench.grid.build_grid`);
2. skip the runs already in the CSV (resuming);
3. hand the rest to an executor; as each run finishes, save its plan next to
   the CSV, re-check it with the evaluator and append its row.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

from memopt.bench.executors import LocalExecutor, pool_size
from memopt.bench.grid import BenchSpec, Job, build_grid
from memopt.bench.progress import Progress
from memopt.bench.table import ResultsTable, make_row
from memopt.core.instance import Instance


@dataclass
class BenchSummary:
    """What a call of :func:`run_bench` did."""

    path: str
    total: int = 0  # runs in the grid
    skipped: int = 0  # already in the CSV
    ran: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, str]] = field(default_factory=list)  # the rows written by this call
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.statuses.get("error", 0)


def plans_dir_for(out: str) -> str:
    """``results/NAME.csv`` keeps its plans in ``results/NAME/plans``."""
    return os.path.join(os.path.splitext(out)[0], "plans")


def load_instances(paths: list[str] | tuple[str, ...], load=None) -> dict[str, Instance]:
    """Load every instance file once (a bad file is a :class:`MemoptError` naming it)."""
    from memopt.io import load_instance

    load = load or load_instance
    return {p: load(p) for p in dict.fromkeys(paths)}


def run_bench(spec: BenchSpec, out: str, *, executor=None, instances: dict[str, Instance] | None = None,
              retry_errors: bool = False, progress: bool = True, stream: TextIO | None = None) -> BenchSummary:
    """Run the grid of ``spec`` into the CSV ``out`` (resuming it) and return a summary.

    ``executor`` defaults to a :class:`LocalExecutor` sized for
    ``spec.threads``. ``instances`` may hold already loaded instances by
    file name (else they are loaded here).
    """
    stream = stream or sys.stderr
    spec.instances = [os.path.normpath(p) for p in spec.instances]
    if instances is not None:
        instances = {os.path.normpath(k): v for k, v in instances.items()}
    instances = instances or load_instances(spec.instances)
    jobs, notes = build_grid(spec, instances, plans_dir_for(out))
    table = ResultsTable(out)
    stale = table.drop_stale({j.instance_file: j.instance_hash for j in jobs})
    if stale:
        notes.append(f"{stale} row(s) of instance files that changed since were dropped: they run again")
    keys = [j.key for j in jobs]
    table.check_compatible(spec.time_limit, spec.threads, keys)
    if retry_errors:
        table.drop_errors(keys)
    done = table.done()
    todo: list[Job] = [j for j in jobs if j.key not in done]
    summary = BenchSummary(path=out, total=len(jobs), skipped=len(jobs) - len(todo), notes=notes)
    for note in notes:
        print(f"memopt bench: note: {note}", file=stream)
    if executor is None:
        executor = LocalExecutor(pool_size(spec.threads))
    bar = Progress(len(todo), stream=stream, enabled=progress)
    try:
        for job, outcome in executor.run(todo):
            res = outcome.result
            if res is not None and str(res.statistics.stop_reason) == "interrupted":
                # Ctrl-C reached a run of this process (the serial executor): it is not a finished run
                # (no row: the same command runs it again), and the grid stops here
                raise KeyboardInterrupt
            row = make_row(job, outcome)
            table.append(row)
            summary.rows.append(row)
            summary.ran += 1
            summary.statuses[row["status"]] = summary.statuses.get(row["status"], 0) + 1
            what = row["status"] + (f" {row['value']}" if row["value"] else "")
            bar.update(f"{job.describe()}: {what}")
    finally:
        bar.close()
    return summary


__all__ = ["BenchSummary", "run_bench", "plans_dir_for", "load_instances"]
