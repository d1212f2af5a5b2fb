"""Where the runs of a grid execute.

Every executor has ``run(jobs)``: an iterator of ``(job, outcome)`` in the
order the runs finish. The grid, the re-check and the CSV are the caller's
(:func:`memopt.bench.run_bench`); executors only run jobs.

- :class:`SerialExecutor`: in this process, one run after another (no
  isolation; for debugging).
- :class:`LocalExecutor` (the default): one child process per run, at most
  ``workers`` at a time, with ``workers × threads ≤ cores`` so runs do not
  fight for cores; a run alive past its ``kill_after`` is killed with its
  process group.
- :class:`DaskExecutor`: the same runs on a Dask ``distributed`` cluster
  (optional extra ``cluster``), given the scheduler's address.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator

from memopt.bench.grid import Job
from memopt.bench.isolate import describe_exception, kill_tree, killed_message
from memopt.bench.worker import Outcome, run_isolated, run_job
from memopt.core.errors import MemoptError


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def pool_size(threads: int, jobs: int | None = None, cores: int | None = None) -> int:
    """Worker processes for runs of ``threads`` threads each: ``cores // threads`` (≥ 1), or ``jobs``."""
    if jobs is not None:
        if jobs < 1:
            raise MemoptError(f"--jobs must be >= 1, got {jobs}")
        return jobs
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, threads))


class SerialExecutor:
    """Run every job in this process, one after another."""

    name = "serial"

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Outcome]]:
        for job in jobs:
            yield job, run_job(job)


def _child(job: Job, conn) -> None:
    """Body of a local worker process: solve, send the outcome back."""
    if os.name == "posix":
        os.setpgrp()  # own process group: a kill takes the solver's subprocesses too
    try:
        out = run_job(job)
    except BaseException as e:  # noqa: BLE001 - e.g. KeyboardInterrupt in the child
        out = Outcome(error=describe_exception(e))
    try:
        conn.send(out)
    except Exception as e:  # noqa: BLE001 - e.g. an unpicklable statistic
        conn.send(Outcome(error=f"cannot send the result back: {describe_exception(e)}", wall=out.wall))
    conn.close()


def _context():
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    # fork is instant (the registry is already loaded) but unsafe once threads exist
    if "fork" in methods and threading.active_count() == 1 and sys.platform != "darwin":
        return mp.get_context("fork")
    if "forkserver" in methods:
        return mp.get_context("forkserver")
    return mp.get_context("spawn")


class LocalExecutor:
    """One child process per run, ``workers`` at a time, killed past ``kill_after``.

    Parameters
    ----------
    workers:
        Runs at the same time; see :func:`pool_size` for the default.
    """

    name = "local"

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise MemoptError(f"--jobs must be >= 1, got {workers}")
        self.workers = workers

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Outcome]]:
        from multiprocessing.connection import wait

        ctx = _context()
        pending = deque(jobs)
        running: dict = {}  # connection -> (job, process, start)
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    job = pending.popleft()
                    if job.error is not None:  # nothing to run
                        yield job, Outcome(error=job.error)
                        continue
                    r, w = ctx.Pipe(duplex=False)
                    p = ctx.Process(target=_child, args=(job, w), name=f"memopt-bench-{job.method}")
                    p.start()
                    w.close()
                    running[r] = (job, p, time.monotonic())
                if not running:
                    continue
                now = time.monotonic()
                deadlines = [start + job.kill_after for job, _, start in running.values() if job.kill_after is not None]
                timeout = max(0.0, min(deadlines) - now) if deadlines else None
                for conn in wait(list(running), timeout):
                    job, p, start = running.pop(conn)
                    try:
                        out = conn.recv()
                    except (EOFError, OSError):
                        p.join(5)
                        out = Outcome(error=f"worker process died (exit code {p.exitcode})",
                                      wall=time.monotonic() - start)
                    conn.close()
                    p.join(5)
                    if p.is_alive():
                        kill_tree(p.pid)
                        p.join()
                    yield job, out
                now = time.monotonic()
                for conn, (job, p, start) in list(running.items()):
                    if job.kill_after is not None and now - start >= job.kill_after:
                        del running[conn]
                        kill_tree(p.pid)
                        p.join()
                        conn.close()
                        yield job, Outcome(error=killed_message(now - start, job.time_limit), wall=now - start)
        finally:
            # interrupted (Ctrl-C, or the caller stopped iterating): no orphan solvers
            for conn, (_, p, _) in running.items():
                if p.is_alive():
                    kill_tree(p.pid)
                p.join()
                conn.close()


class DaskExecutor:
    """Run the grid on a Dask ``distributed`` cluster.

    Give the scheduler's ``address`` (``tcp://host:8786``) or an existing
    ``client``. Each run is a task; when every worker advertises a ``cores``
    resource (``dask worker ADDRESS --nthreads N --resources cores=N``), a
    run of T threads asks for ``cores=T``, so a worker never runs more
    solver threads than it has cores. With ``isolate`` (default: when the
    job has a kill margin), the run is a child process of the Dask worker,
    killed at ``kill_after``.

    Workers need memopt installed; instance files need not be shared (each
    job carries its instance). Plans come back to this process, which
    writes and re-checks them.
    """

    name = "dask"

    def __init__(self, address: str | None = None, client=None, isolate: bool | None = None,
                 timeout: float = 30.0):
        if address is None and client is None:
            raise MemoptError("--executor dask needs --address tcp://HOST:PORT of a running Dask scheduler")
        self.address = address
        self.client = client
        self.isolate = isolate
        self.timeout = timeout

    def _connect(self):
        try:
            from distributed import Client
        except ImportError:
            raise MemoptError("--executor dask needs Dask distributed: pip install 'memopt[cluster]'") from None
        try:
            return Client(self.address, timeout=self.timeout, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise MemoptError(f"cannot reach the Dask scheduler at {self.address}: {e}") from None

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Outcome]]:
        try:
            from distributed import as_completed
        except ImportError:
            raise MemoptError("--executor dask needs Dask distributed: pip install 'memopt[cluster]'") from None
        client = self.client or self._connect()
        own = self.client is None
        futures: dict = {}
        try:
            workers = client.scheduler_info().get("workers", {})
            with_cores = bool(workers) and all("cores" in (w.get("resources") or {}) for w in workers.values())
            # a run asking for more cores than any worker has would wait forever: cap it
            most = max((float(w["resources"]["cores"]) for w in workers.values()), default=1.0) if with_cores else 1.0
            for job in jobs:
                if job.error is not None:
                    yield job, Outcome(error=job.error)
                    continue
                isolate = self.isolate if self.isolate is not None else job.kill_after is not None
                fn = run_isolated if isolate else run_job
                kw = {"resources": {"cores": min(job.threads, most)}} if with_cores else {}
                futures[client.submit(fn, job, pure=False, **kw)] = job
            for fut in as_completed(list(futures), loop=client.loop):  # our client need not be the default
                job = futures.pop(fut)
                try:
                    out = fut.result()
                except Exception as e:  # noqa: BLE001 - a lost worker, a (de)serialisation error...
                    out = Outcome(error=f"dask: {describe_exception(e)}")
                yield job, out
        finally:
            for fut in futures:
                fut.cancel()
            if own:
                client.close()


def make_executor(name: str, *, threads: int = 1, jobs: int | None = None, address: str | None = None):
    """The executor called ``name`` (serial, local, dask) with its settings."""
    if name == "serial":
        return SerialExecutor()
    if name == "local":
        return LocalExecutor(pool_size(threads, jobs))
    if name == "dask":
        return DaskExecutor(address)
    raise MemoptError(f"unknown executor {name!r}; known: local, serial, dask")


__all__ = ["SerialExecutor", "LocalExecutor", "DaskExecutor", "make_executor", "available_cores", "pool_size"]
