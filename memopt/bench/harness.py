"""The shared harness of the benchmark scripts (``benchmarks/*.py``).

A benchmark is a list of :class:`Case` records — one measured run each:
the values of its key columns (what identifies it in the results table),
the columns known before it runs (group, instance, tasks...), and the
:class:`~memopt.bench.isolate.Call` to run. :func:`run_cases` runs each case
in a fresh Python process (:func:`~memopt.bench.isolate.call_isolated`:
killed past its margin; wall seconds and the child's peak resident memory
measured by ``wait4``), optionally holding the benchmark lock, and puts
its row into a :class:`ResultsCSV` as soon as it ends — a typed CSV
(:class:`Schema`), keyed, resumable: a case whose key is already in the
table is not run again unless ``fresh``.

Every row gets ``wall_seconds`` (the child's whole life: start-up, loading,
the run) and ``max_rss_mb`` (its peak RSS, MiB); every benchmark prints the
same table (:data:`STANDARD`: instance, method, status, value, bound,
seconds, wall seconds, memory) with :func:`format_table`.

Solving is one library call: :func:`solve_case` builds the case of
``memopt.solve`` on an instance (a loaded :class:`~memopt.core.instance.Instance`
or a :class:`Source` the child loads), and :func:`solve_row` is what the
child runs. Functions of a benchmark script run in the child by file
(:func:`~memopt.bench.isolate.script_target`): the scripts need neither a
package nor a ``sys.path`` edit.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from memopt.bench.grid import default_kill_after
from memopt.bench.isolate import Call, CallOutcome, call_isolated
from memopt.core.instance import Instance

#: the columns every benchmark prints, in this order (a script maps its own names onto them)
STANDARD = ("instance", "method", "status", "value", "bound", "seconds", "wall_seconds", "max_rss_mb")
#: how a script names the standard columns: its own column, or a function of the row
Names = dict[str, "str | Callable[[dict[str, Any]], Any]"]
#: the columns the harness adds to every row
MEASURED = ("wall_seconds:float", "max_rss_mb:float")
_TYPES: dict[str, Callable[[str], Any]] = {}


# ------------------------------------------------------------------ typed tables
def _bool(s: str) -> bool:
    low = s.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise ValueError(f"not a boolean: {s!r}")


def _num(s: str) -> int | float:
    try:
        return int(s)
    except ValueError:
        return float(s)


_TYPES.update(str=str, int=int, float=float, bool=_bool, num=_num)


class Schema:
    """Ordered, typed columns: ``Schema.of("instance tasks:int value:num ...")`` (no type: ``str``).

    Types: ``str``, ``int``, ``float``, ``num`` (an int when it is one, else a
    float), ``bool`` (reads ``True``/``true``). An empty cell is ``None``; a
    cell that does not parse stays text (an old table is never refused).
    """

    def __init__(self, columns: Sequence[tuple[str, str]]):
        for _, t in columns:
            if t not in _TYPES:
                raise ValueError(f"unknown column type {t!r}; known: {', '.join(_TYPES)}")
        self.columns = list(dict(columns).items())

    @classmethod
    def of(cls, spec: str | Sequence[str], *, measured: bool = True) -> Schema:
        words = spec.split() if isinstance(spec, str) else list(spec)
        if measured:
            words += [w for w in MEASURED if w.split(":")[0] not in {x.split(":")[0] for x in words}]
        return cls([(w.split(":", 1)[0], w.split(":", 1)[1] if ":" in w else "str") for w in words])

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.columns]

    def parse(self, name: str, text: str | None) -> Any:
        if text is None or text == "":
            return None
        kind = dict(self.columns).get(name, "str")
        try:
            return _TYPES[kind](text)
        except ValueError:
            return text

    @staticmethod
    def cell(value: Any) -> str:
        """A value as CSV text: '' for None, ``str`` otherwise (the benchmarks' tables always were)."""
        if value is None:
            return ""
        if isinstance(value, float) and not math.isfinite(value):
            return ""
        return " ".join(str(value).split()) if isinstance(value, str) else str(value)


class ResultsCSV:
    """A results table on disk: typed rows, one per key, written as each run ends.

    ``key`` names the columns that identify a run. Opening an existing file
    keeps every row (columns it has beyond the schema are kept as text; the
    schema's new columns are empty for old rows). A row whose key is already
    there replaces it in place; a new key is appended.
    """

    def __init__(self, path: str, schema: Schema, key: Sequence[str]):
        self.path = path
        self.schema = schema
        self.key = tuple(key)
        self.header = schema.names
        self.rows: list[dict[str, Any]] = []
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                extra = [c for c in (reader.fieldnames or []) if c and c not in self.header]
                self.header = self.header + extra
                for r in reader:
                    if None in r:  # a truncated or malformed line: dropped, it runs again
                        continue
                    self.rows.append({c: schema.parse(c, r.get(c)) for c in self.header})
            self._on_disk = reader.fieldnames == self.header
        else:
            self._on_disk = False
        self._index = {self.key_of(r): i for i, r in enumerate(self.rows)}

    def key_of(self, row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(Schema.cell(row.get(k)) for k in self.key)

    def __contains__(self, key: tuple[str, ...]) -> bool:
        return key in self._index

    def get(self, key: tuple[str, ...]) -> dict[str, Any] | None:
        i = self._index.get(key)
        return None if i is None else self.rows[i]

    def drop(self, keep: Callable[[dict[str, Any]], bool]) -> int:
        """Remove the rows ``keep`` rejects; rewrite the file. Returns how many went."""
        before = len(self.rows)
        self.rows = [r for r in self.rows if keep(r)]
        self._index = {self.key_of(r): i for i, r in enumerate(self.rows)}
        if len(self.rows) != before:
            self.write()
        return before - len(self.rows)

    def put(self, row: dict[str, Any]) -> None:
        """Add or replace the row of its key, on disk at once (an interrupted benchmark keeps it)."""
        row = {c: row.get(c) for c in self.header}
        k = self.key_of(row)
        if k in self._index:
            self.rows[self._index[k]] = row
            self.write()
            return
        self._index[k] = len(self.rows)
        self.rows.append(row)
        if not self._on_disk:
            self.write()
            return
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([Schema.cell(row[c]) for c in self.header])

    def write(self) -> None:
        """Rewrite the whole file atomically."""
        d = os.path.dirname(self.path)
        if d:
            os.makedirs(d, exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.header)
            w.writerows([Schema.cell(r.get(c)) for c in self.header] for r in self.rows)
        os.replace(tmp, self.path)
        self._on_disk = True


# ------------------------------------------------------------------ cases
@dataclass
class Case:
    """One measured run: ``fields`` (known before it runs; they include the key columns) and the ``call``.

    ``command`` is for a runner that starts a program instead (e.g. ``memopt
    solve``: ``benchmarks/contract.py``); :func:`run_case` runs ``call``.
    """

    fields: dict[str, Any]
    call: Call = field(default_factory=lambda: Call(""))
    time_limit: float | None = None
    kill_after: float | None = None  # default: 2 × time limit + 30 s (as memopt bench)
    label: str = ""
    command: tuple[str, ...] = ()

    @property
    def kill_margin(self) -> float | None:
        return self.kill_after if self.kill_after is not None else default_kill_after(self.time_limit)


def measured_columns(out: CallOutcome) -> dict[str, Any]:
    """``wall_seconds`` and ``max_rss_mb`` of a child."""
    return {"wall_seconds": round(out.wall, 3),
            "max_rss_mb": None if out.max_rss is None else round(out.max_rss / 2**20, 1)}


def run_case(case: Case, *, lock: str | None = None) -> dict[str, Any]:
    """Run one case in its own process; its row (``status`` error and ``message`` when the call failed)."""
    with locked(lock):
        out = call_isolated(case.call, kill_after=case.kill_margin, time_limit=case.time_limit)
    row = dict(case.fields)
    if out.error is not None:
        row.update(status="error", message=out.error, seconds=round(out.wall, 3))
    elif isinstance(out.value, dict):
        row.update(out.value)
    else:
        row["value"] = out.value
    row.update(measured_columns(out))
    return row


def run_cases(cases: Iterable[Case], table: ResultsCSV, *, fresh: bool = False, lock: str | None = None,
              finish: Callable[[Case, dict[str, Any]], dict[str, Any]] | None = None,
              names: Names | None = None, stream: TextIO | None = None,
              runner: Callable[..., dict[str, Any]] = run_case) -> list[dict[str, Any]]:
    """Run every case not yet in ``table`` (all of them with ``fresh``); the rows of all cases, in order.

    ``runner(case, lock=...)`` makes a case's row (default :func:`run_case`);
    ``finish(case, row)`` may complete a row (derived columns) before it is
    written. Each finished run prints one line of the standard columns
    (``names`` maps them to the table's own); a case taken from the table
    prints nothing.
    """
    stream = stream or sys.stdout
    rows = []
    for case in cases:
        key = table.key_of(case.fields)
        if not fresh and key in table:
            rows.append(table.get(key))
            continue
        row = runner(case, lock=lock)
        if finish is not None:
            row = finish(case, row)
        if row.get("status") == "error" and "status" not in table.header:
            rows.append(row)  # a table without a status column cannot hold a failure: it runs again next time
        else:
            table.put(row)
            rows.append(table.get(key))
        print(format_line(row, names), file=stream, flush=True)
    return rows


# ------------------------------------------------------------------ solving
@dataclass(frozen=True)
class Source:
    """An instance the child loads itself: a file, or a generator of :mod:`memopt.generators` with its
    arguments; ``machine`` overrides (e.g. ``{"budget": None}``, ``{"bandwidth": 4}``)."""

    path: str | None = None
    generator: str | None = None
    args: tuple[tuple[str, Any], ...] = ()
    machine: tuple[tuple[str, Any], ...] = ()

    def load(self) -> Instance:
        if self.path is not None:
            from memopt.io import load_instance

            inst = load_instance(self.path)
        else:
            import memopt.generators as gen

            inst = getattr(gen, str(self.generator))(**dict(self.args))
        return inst.with_machine(**dict(self.machine)) if self.machine else inst


def solve_row(instance: Instance | Source, objective: str, method: str, *, budget: Any = None,
              recompute: bool = False, offload: bool = False, time_limit: float | None = 60.0, threads: int = 2,
              seed: int = 0, options: dict[str, Any] | None = None,
              stats: Sequence[str] | dict[str, str] = ()) -> dict[str, Any]:
    """``memopt.solve`` here (the child's side of :func:`solve_case`) and the columns of its result.

    A request the method refuses (or a bad option: a ``MemoptError``) is
    status ``refused`` with the reason. ``seconds`` is the wall time of the
    ``solve`` call; ``stats`` names the result's statistics to copy as
    columns of their own (a dict: statistic -> column).
    """
    from memopt.core.errors import MemoptError
    from memopt.pipeline import solve

    inst = instance.load() if isinstance(instance, Source) else instance
    t0 = time.perf_counter()
    try:
        res = solve(inst, objective, method, budget=budget, recompute=recompute, offload=offload,
                    time_limit=time_limit, threads=threads, seed=seed, **dict(options or {}))
    except MemoptError as e:
        return {"status": "refused", "seconds": round(time.perf_counter() - t0, 3),
                "message": str(e).splitlines()[0][:200]}
    seconds = time.perf_counter() - t0
    st = res.stats or {}
    row = {"status": str(res.status), "value": res.value, "bound": res.bound,
           "gap": None if res.gap is None else round(res.gap, 6), "seconds": round(seconds, 3),
           "solve_seconds": round(res.solve_seconds, 3), "first_plan_seconds": st.get("first_plan_seconds"),
           "peak": res.peak, "makespan": res.makespan, "stages": None if res.plan is None else len(res.plan),
           "method_used": res.method, "message": (res.message or "")[:200],
           "peak_memory": res.statistics.peak_memory}  # (for max_rss_mb: the process and its helpers)
    names = stats if isinstance(stats, dict) else {k: k for k in stats}
    row.update({col: st.get(k) for k, col in names.items()})
    return row


def solve_case(fields: dict[str, Any], instance: Instance | Source, objective: str, method: str, *,
               time_limit: float | None, budget: Any = None, recompute: bool = False, offload: bool = False,
               threads: int = 2, seed: int = 0, options: dict[str, Any] | None = None,
               stats: Sequence[str] | dict[str, str] = (), kill_after: float | None = None) -> Case:
    """The :class:`Case` of one ``memopt.solve`` call (see :func:`solve_row`)."""
    kwargs = {"instance": instance, "objective": objective, "method": method, "budget": budget,
              "recompute": recompute, "offload": offload, "time_limit": time_limit, "threads": threads, "seed": seed,
              "options": dict(options or {}),
              "stats": dict(stats) if isinstance(stats, dict) else tuple(stats)}
    label = " ".join(str(fields.get(k, "")) for k in ("instance", "method"))
    return Case(fields=dict(fields), call=Call("memopt.bench.harness:solve_row", kwargs), time_limit=time_limit,
                kill_after=kill_after, label=label)


class IsolatedExecutor:
    """A ``memopt bench`` executor (``run_bench(..., executor=)``) running each job in a fresh process.

    Like :class:`~memopt.bench.executors.LocalExecutor` (``workers`` runs at a
    time, each killed past its ``kill_after``), but every run is a new
    interpreter (:func:`~memopt.bench.worker.run_isolated`), so its peak
    resident memory is its own: :attr:`measured` maps each job's key to its
    outcome (``wall``, ``max_rss``) for the runs of this call.
    """

    name = "isolated"

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)
        self.measured: dict[tuple[str, ...], Any] = {}

    def run(self, jobs: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        from memopt.bench.isolate import kill_live
        from memopt.bench.worker import Outcome, run_isolated

        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="memopt-bench")
        try:
            futures = {}
            for job in jobs:
                if job.error is not None:
                    yield job, Outcome(error=job.error)
                else:
                    futures[pool.submit(run_isolated, job)] = job
            for fut in as_completed(futures):
                job = futures[fut]
                out = fut.result()
                self.measured[job.key] = out
                yield job, out
        finally:  # interrupted: no queued run starts, no running one is left behind
            pool.shutdown(wait=False, cancel_futures=True)
            kill_live()
            pool.shutdown(wait=True)


# ------------------------------------------------------------------ printing
def fmt(x: Any, digits: int = 2) -> str:
    """A cell for people: '' for None, floats with ``digits`` decimals, the rest as is."""
    if x is None or x == "":
        return ""
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _standard(row: dict[str, Any], names: Names | None) -> list[str]:
    """The standard columns of a row; ``names`` maps one to the table's own column, or to a function of the row."""
    names = names or {}
    out = []
    for c in STANDARD:
        how = names.get(c, c)
        out.append(fmt(how(row) if callable(how) else row.get(how)))
    return out


def format_line(row: dict[str, Any], names: Names | None = None) -> str:
    """One finished run, for the progress output."""
    inst, method, status, value, bound, secs, wall, mb = _standard(row, names)
    msg = row.get("message") or ""
    tail = f"  {msg[:100]}" if status in ("error", "refused") and msg else ""
    return (f"{inst[:40]:40s} {method[:22]:22s} {status:10s} {value:>16s} {bound:>16s} {secs:>8s}s "
            f"{wall:>8s}s {mb:>8s} MB{tail}")


def format_table(rows: Iterable[dict[str, Any]], names: Names | None = None) -> str:
    """The standard table of a benchmark (text, aligned)."""
    head = ["instance", "method", "status", "value", "bound", "seconds", "wall s", "max RSS MB"]
    body = [_standard(r, names) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    right = [False, False, False, True, True, True, True, True]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None,
             cell: Callable[[Any], str] = fmt) -> str:
    """A Markdown table; ``align`` one letter per column (``l``/``r``; default: first left, rest right);
    ``cell`` writes a value (default :func:`fmt`; :meth:`Schema.cell` keeps every digit)."""
    header = list(header)
    align = align or "l" + "r" * (len(header) - 1)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    out += ["| " + " | ".join(cell(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def geomean(values: Iterable[float]) -> float | None:
    vs = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in vs) / len(vs)) if vs else None


# ------------------------------------------------------------------ command lines
def add_common_args(ap: argparse.ArgumentParser, *, lock: str | None = None) -> None:
    """The options every benchmark has: --quick, --out, --fresh, --lock."""
    ap.add_argument("--quick", action="store_true",
                    help="a few small cases (under a minute); writes under results/tmp unless --out")
    ap.add_argument("--out", default=None, help="folder of the CSV and Markdown files (default results, "
                    "results/tmp with --quick)")
    ap.add_argument("--fresh", action="store_true",
                    help="run the selected cases again even when the CSV has them (default: resume)")
    ap.add_argument("--lock", default=lock, help="flock this file around each run (default: "
                    + (lock or "none") + "; '' for none)")


def out_dir(args: argparse.Namespace) -> str:
    """Where a benchmark writes: ``--out``, else ``results`` (``results/tmp`` for a quick run)."""
    d = args.out or (os.path.join("results", "tmp") if getattr(args, "quick", False) else "results")
    os.makedirs(d, exist_ok=True)
    return d


@contextlib.contextmanager
def locked(path: str | None) -> Iterator[None]:
    """Hold the benchmark lock (``flock`` on ``path``) while the block runs; nothing without a path.

    Never around a benchmark already run under ``flock`` of the same file: it would wait for itself.
    """
    if not path:
        yield
        return
    import fcntl

    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_text(path: str, text: str) -> None:
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")


__all__ = ["Case", "IsolatedExecutor", "MEASURED", "ResultsCSV", "STANDARD", "Schema", "Source", "add_common_args",
           "fmt", "format_line", "format_table", "geomean", "locked", "md_table", "measured_columns", "out_dir",
           "run_case", "run_cases", "solve_case", "solve_row", "write_text"]
