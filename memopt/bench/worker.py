"""One run of the grid, on whatever process executes it.

:func:`run_job` solves one :class:`~memopt.bench.grid.Job` and returns an
:class:`Outcome`: the :class:`~memopt.Result` (plan included, memory trace
dropped), or the error message. It never raises: a method that raises, an
unknown method or a missing optional solver is an outcome with ``error``
set, so one bad run never stops a grid.

:func:`run_isolated` runs a job in a fresh Python process (``python -m
memopt.bench.worker``) and kills its whole process group when it outlives
``job.kill_after`` — the safety margin for a stuck solver on executors that
cannot kill their own workers (a Dask worker).
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass

from memopt.bench.grid import Job
from memopt.bench.isolate import (
    child_env,
    child_main,
    describe_exception,
    killed_message,
    last_line,
    spawn_measured,
    tree_rss,
)
from memopt.core.errors import MemoptError
from memopt.core.result import Result


@dataclass
class Outcome:
    """What a run produced: a result, or why there is none."""

    result: Result | None = None
    error: str | None = None
    wall: float = 0.0  # seconds in the worker, import and solve included
    max_rss: int | None = None  # peak resident memory of the run's process and its helpers, bytes (isolated runs)


def run_job(job: Job) -> Outcome:
    """Solve ``job`` in this process; never raises (except KeyboardInterrupt)."""
    t0 = time.perf_counter()
    if job.error is not None:
        return Outcome(error=job.error)
    try:
        load_plugins(job.imports)
        from memopt.pipeline import solve_request

        assert job.request is not None
        res = solve_request(job.request, job.method, time_limit=job.time_limit, threads=job.threads,
                            seed=job.repeat, **dict(job.options))
        res.evaluation = None  # the memory trace is large and the bench re-checks the plan anyway
        return Outcome(result=res, wall=time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - every failure of a run becomes a row
        return Outcome(error=describe_exception(e), wall=time.perf_counter() - t0)


def load_plugins(modules) -> None:
    """Import each plugin module and add its methods to the catalog (its ``register(catalog)``)."""
    from memopt.catalog import CATALOG

    for name in modules:
        mod = importlib.import_module(name)
        register = getattr(mod, "register", None)
        if register is None:
            raise MemoptError(f"plugin {name!r} has no register(catalog) function")
        register(CATALOG)


def run_isolated(job: Job) -> Outcome:
    """:func:`run_job` in a child Python process, killed at ``job.kill_after`` seconds.

    The child sees this process's ``sys.path`` (so modules of ``job.imports``
    found here are found there) and runs in its own session, so a solver's
    own subprocesses (e.g. CBC) die with it. The outcome carries the child's
    peak resident memory (:func:`~memopt.bench.isolate.spawn_measured`).
    """
    with tempfile.TemporaryDirectory(prefix="memopt-run-") as tmp:
        job_file = os.path.join(tmp, "job.pickle")
        out_file = os.path.join(tmp, "outcome.pickle")
        with open(job_file, "wb") as f:
            pickle.dump(job, f)
        run = spawn_measured([sys.executable, "-m", "memopt.bench.worker", job_file, out_file],
                             kill_after=job.kill_after, env=child_env())
        if run.killed:
            return Outcome(error=killed_message(run.wall, job.time_limit), wall=run.wall, max_rss=run.max_rss)
        if os.path.exists(out_file):
            with open(out_file, "rb") as f:
                out: Outcome = pickle.load(f)
            # the whole child (start-up, import and solve) and its helper processes
            out.wall, out.max_rss = run.wall, tree_rss(run.max_rss, out.result)
            return out
        return Outcome(error=f"worker process died (exit code {run.returncode}) {last_line(run.stderr)}".strip(),
                       wall=run.wall, max_rss=run.max_rss)


def _main(argv: list[str]) -> int:
    # run as `python -m`, this file is __main__: pickle the outcome as memopt.bench.worker.Outcome
    from memopt.bench.worker import Outcome, run_job

    return child_main(argv, run_job, lambda message: Outcome(error=message))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
