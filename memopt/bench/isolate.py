"""Run something in a fresh Python process, killed past a margin, and measure it.

:func:`spawn_measured` starts a command in its own session under GNU time
(which reports the peak resident set size of *that* child: the largest of
itself and the processes it waited for, e.g. a CBC solver; without GNU time,
``os.wait4``'s, which has this process's own peak as its floor), measures its
wall time and kills its whole process group when it outlives ``kill_after``
seconds. It is the one way the benchmarks start a
child: :func:`memopt.bench.worker.run_isolated` (a grid's job),
:func:`call_isolated` (any function of a benchmark) and
``benchmarks/contract.py`` (a real ``memopt solve``) all use it.

:func:`call_isolated` runs ``function(**kwargs)`` in ``python -m
memopt.bench.isolate``: the :class:`Call` names the function as
``"package.module:function"`` or ``"path/to/script.py:function"`` (a
benchmark script is loaded from its file, so scripts need no package and no
``sys.path`` edit); its keyword arguments and its return value go through
pickle files.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Linux reports ``ru_maxrss`` in KiB, macOS in bytes
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024
#: children started by :func:`spawn_measured` and not yet reaped (killed by :func:`kill_live`)
_LIVE: set[int] = set()


@dataclass
class Spawned:
    """How a child process ended: exit code, wall seconds, peak resident memory (bytes)."""

    returncode: int
    wall: float
    max_rss: int | None
    killed: bool = False
    stdout: bytes = b""
    stderr: bytes = b""


def kill_tree(pid: int) -> None:
    """Kill a process and its group (it was started as a group leader)."""
    try:
        if os.name == "posix":
            os.killpg(pid, signal.SIGKILL)
        else:  # pragma: no cover
            os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def kill_live() -> None:
    """Kill every child :func:`spawn_measured` is still waiting for (threads waiting on them then return)."""
    for pid in list(_LIVE):
        kill_tree(pid)


def child_env(extra_path: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child that must import what this process imports (its ``sys.path``)."""
    out = dict(os.environ if env is None else env)
    paths = list(extra_path if extra_path is not None else [p for p in sys.path if p])
    out["PYTHONPATH"] = os.pathsep.join(paths)
    return out


_LAUNCHER: str | None = None  # GNU time's path, "" when absent (found once)


def rss_launcher() -> str | None:
    """GNU time (``/usr/bin/time``), when it works here: the small parent that measures a child's peak RSS.

    A child started directly by this process would inherit this process's
    resident size as the floor of its ``ru_maxrss`` (Linux carries the
    parent's high-water mark through ``fork``/``vfork`` and ``exec``), so a
    benchmark holding a 50,000-task graph would see every run "use" it. GNU
    time's own footprint is about 2 MiB.
    """
    global _LAUNCHER
    if _LAUNCHER is None:
        path = shutil.which("time") or ""
        try:
            ok = bool(path) and subprocess.run([path, "-f", "%M", "-o", os.devnull, "--", "true"], check=False,
                                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        _LAUNCHER = path if ok else ""
    return _LAUNCHER or None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def _read_launcher(path: str) -> tuple[int | None, int | None]:
    """(peak RSS in bytes, the child's signal number) from GNU time's ``-o`` file."""
    try:
        with open(path) as f:
            lines = [x.strip() for x in f if x.strip()]
    except OSError:
        return None, None
    sig = next((int(x.rsplit(" ", 1)[1]) for x in lines if x.startswith("Command terminated by signal")), None)
    try:
        return int(lines[-1]) * 1024, sig
    except (IndexError, ValueError):
        return None, sig


def spawn_measured(argv: Sequence[str], *, kill_after: float | None = None, env: Mapping[str, str] | None = None,
                   cwd: str | None = None, capture_stdout: bool = False) -> Spawned:
    """Run ``argv`` to its end (or kill it at ``kill_after`` s); wall time and peak RSS of that child.

    The child runs in its own session, so a kill takes its solver
    subprocesses too, and so does an interruption of this process (Ctrl-C).
    Its peak resident memory comes from GNU time (:func:`rss_launcher`; on a
    kill the child is killed first, so the launcher still reports it), else
    from ``wait4`` (then it is at least this process's own peak: see there).
    Output goes to temporary files, never pipes (a chatty child cannot block).
    """
    launcher = rss_launcher()
    with tempfile.TemporaryDirectory(prefix="memopt-spawn-") as tmp:
        rss_file = os.path.join(tmp, "rss")
        cmd = [launcher, "-f", "%M", "-o", rss_file, "--", *argv] if launcher else list(argv)
        with open(os.path.join(tmp, "out"), "w+b") as out, open(os.path.join(tmp, "err"), "w+b") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out if capture_stdout else subprocess.DEVNULL,
                                    stderr=err, env=None if env is None else dict(env), cwd=cwd,
                                    start_new_session=(os.name == "posix"))
            _LIVE.add(proc.pid)
            killed = threading.Event()
            ended = threading.Event()

            def kill() -> None:
                killed.set()
                for child in _children(proc.pid) if launcher else ():
                    kill_tree_member(child)  # the run itself: the launcher then reports its memory
                if not launcher or not ended.wait(2.0):
                    kill_tree(proc.pid)

            timer = threading.Timer(kill_after, kill) if kill_after is not None else None
            if timer is not None:
                timer.daemon = True
                timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:  # interrupted: leave no solver behind
                kill_tree(proc.pid)
                proc.wait()
                raise
            finally:
                ended.set()
                _LIVE.discard(proc.pid)
                if timer is not None:
                    timer.cancel()
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
            kill_tree(proc.pid)  # a solver the run left behind in its group
            rss: int | None = usage.ru_maxrss * _RSS_UNIT or None
            code = proc.returncode
            if launcher:
                rss, sig = _read_launcher(rss_file)
                if sig is not None:
                    code = -sig
            out.seek(0)
            err.seek(0)
            return Spawned(returncode=code, wall=wall, max_rss=rss,
                           killed=killed.is_set() and kill_after is not None and wall >= kill_after,
                           stdout=out.read(), stderr=err.read())


def kill_tree_member(pid: int) -> None:
    """Kill one process (not its group)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def describe_exception(e: BaseException) -> str:
    """One line: the message, and where a non-user error was raised."""
    from memopt.core.errors import MemoptError

    msg = str(e) or type(e).__name__
    if isinstance(e, MemoptError):
        return msg
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {msg}{where}"


def killed_message(seconds: float, time_limit: float | None) -> str:
    limit = f" (time limit {time_limit:g}s)" if time_limit is not None else ""
    return f"killed after {seconds:.0f}s: the run did not return{limit}"


def last_line(stderr: bytes) -> str:
    """The last non-empty line a child wrote on stderr (its error, usually)."""
    lines = [x for x in stderr.decode(errors="replace").strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else ""


# ------------------------------------------------------------------ calls
@dataclass(frozen=True)
class Call:
    """``function(**kwargs)`` to run in a child: ``target`` is ``"module:function"`` or ``"file.py:function"``."""

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallOutcome:
    """What a call in a child returned (``value``), or why it did not (``error``); its wall time and max RSS."""

    value: Any = None
    error: str | None = None
    wall: float = 0.0
    max_rss: int | None = None
    killed: bool = False
    user_error: bool = False  # the function raised a MemoptError (a refusal, a bad option)


def load_script(path: str) -> Any:
    """A benchmark script as a module, loaded from its file once (its ``__main__`` block does not run)."""
    name = "memopt_bench_script_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    mod = sys.modules.get(name)
    if mod is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return mod


def resolve(target: str) -> Callable[..., Any]:
    """The function a :class:`Call` names (a script is loaded from its file: :func:`load_script`)."""
    where, _, name = target.rpartition(":")
    if not where or not name:
        raise ValueError(f"call target {target!r}: expected 'module:function' or 'file.py:function'")
    mod = load_script(where) if where.endswith(".py") else importlib.import_module(where)
    return getattr(mod, name)


def script_target(file: str, function: str | Callable[..., Any]) -> str:
    """The target of ``function`` defined in the script ``file`` (pass ``__file__``)."""
    name = function if isinstance(function, str) else function.__name__
    return f"{os.path.abspath(file)}:{name}"


def tree_rss(max_rss: int | None, value: Any) -> int | None:
    """A child's peak memory with its own helper processes: GNU time's peak (of the largest process of the tree:
    Linux keeps the largest, not the sum) or, when larger, the sum the run's memory watchdog sampled
    (``statistics.peak_memory`` of a :class:`~memopt.core.result.Result`, or a row's ``peak_memory``: the
    planner's walker process is counted there)."""
    if isinstance(value, dict):
        sampled = value.get("peak_memory")
    else:
        sampled = getattr(getattr(value, "statistics", None), "peak_memory", None)
    if sampled is None:
        return max_rss
    return sampled if max_rss is None else max(max_rss, sampled)


def call_isolated(call: Call, *, kill_after: float | None = None, time_limit: float | None = None,
                  env: Mapping[str, str] | None = None) -> CallOutcome:
    """Run ``call`` in a fresh ``python -m memopt.bench.isolate``; never raises (but KeyboardInterrupt)."""
    with tempfile.TemporaryDirectory(prefix="memopt-call-") as tmp:
        call_file = os.path.join(tmp, "call.pickle")
        out_file = os.path.join(tmp, "out.pickle")
        with open(call_file, "wb") as f:
            pickle.dump(call, f)
        run = spawn_measured([sys.executable, "-m", "memopt.bench.isolate", call_file, out_file],
                             kill_after=kill_after, env=env if env is not None else child_env())
        if run.killed:
            return CallOutcome(error=killed_message(run.wall, time_limit), wall=run.wall, max_rss=run.max_rss,
                               killed=True)
        if not os.path.exists(out_file):
            why = f"process died (exit code {run.returncode}) {last_line(run.stderr)}".strip()
            return CallOutcome(error=why, wall=run.wall, max_rss=run.max_rss)
        with open(out_file, "rb") as f:
            out: CallOutcome = pickle.load(f)
        out.wall, out.max_rss = run.wall, tree_rss(run.max_rss, out.value)
        return out


def run_call(call: Call) -> CallOutcome:
    """Run ``call`` here (the child's side); an exception becomes the outcome's ``error``."""
    from memopt.core.errors import MemoptError

    try:
        return CallOutcome(value=resolve(call.target)(**call.kwargs))
    except Exception as e:  # noqa: BLE001 - every failure of a case becomes a row
        return CallOutcome(error=describe_exception(e), user_error=isinstance(e, MemoptError))


def child_main(argv: list[str], run: Callable[[Any], Any], failed: Callable[[str], Any]) -> int:
    """The body of a measured child process: unpickle the task in ``argv[0]``, ``run`` it, pickle its outcome
    into ``argv[1]`` (atomically: a killed child leaves no half-written file); an outcome that cannot be
    pickled becomes ``failed(message)``."""
    task_file, out_file = argv
    with open(task_file, "rb") as f:
        task = pickle.load(f)
    out = run(task)
    tmp = out_file + ".tmp"
    try:
        with open(tmp, "wb") as f:
            pickle.dump(out, f)
    except Exception as e:  # noqa: BLE001 - e.g. an unpicklable value
        with open(tmp, "wb") as f:
            pickle.dump(failed(f"cannot send the result back: {describe_exception(e)}"), f)
    os.replace(tmp, out_file)
    return 0


def _main(argv: list[str]) -> int:
    # run as `python -m`, this module is __main__: pickle the outcome as memopt.bench.isolate.CallOutcome
    from memopt.bench.isolate import CallOutcome, run_call

    return child_main(argv, run_call, lambda message: CallOutcome(error=message))


__all__ = ["Call", "CallOutcome", "Spawned", "call_isolated", "child_env", "child_main", "describe_exception",
           "kill_live", "kill_tree", "killed_message", "last_line", "load_script", "resolve", "rss_launcher",
           "run_call", "script_target", "spawn_measured", "tree_rss"]


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

