"""The run contract: every method on the largest instances, as a user runs it, within its time limit.

    python benchmarks/contract.py [--time-limit 60] [--tolerance 5] [--only TEXTS] [--methods A,B]
        [--problems peak,time+recompute,...] [--shared ../shared/benchmarks] [--fresh] [--quick] [--out DIR]

Each case is a real ``memopt solve INSTANCE -m METHOD ... -t LIMIT`` process
(``python -m memopt solve``), timed from start to exit (interpreter start-up
and loading the instance included: what a user waits for), its peak resident
memory measured by GNU time (:func:`memopt.bench.isolate.spawn_measured`),
killed at 2 × limit + 30 s if it does not end. The contract: every run ends
within its limit plus a few seconds (``--tolerance``, default 5 s), with its
best plan, and a user mistake is one line and exit status 2.

Instances: the graphs of ``<shared>/nodelink``, the four largest shipped
instances (``instances/*.yaml`` by task count), the training graphs of
``instances/nn`` at batch 8, and the generated 1,000-layer training graph
(``memopt generate layered --n 1000 --seed 3 --train``, 2,001 tasks).
Problems: ``peak`` (``--objective peak``, the instance's own budget if it has
one), ``time+recompute`` (``--objective time --recompute --budget 0.5x``), and
where the machine has a bandwidth ``time+offload`` and
``time+recompute+offload`` (budget 0.5x). Methods: every method of the catalog
that handles the problem (``memopt solve --list-methods``), composites
included.

Writes ``results/contract.csv`` (instance, tasks, problem, method, status,
value, bound, solve and wall seconds, limit, overrun = wall − limit, peak RSS,
exit status; resumed unless ``--fresh``) and ``results/contract.md`` (the
table, the runs over the tolerance, the worst overrun and the largest
memory), and prints the standard table. A full run takes hours (most runs
of the large graphs use their whole limit). ``--quick``: the 1,000-layer
graph, two or three methods per problem, ``-t 5``, into ``results/tmp``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

from memopt import CATALOG, load_instance, make_request
from memopt.bench.harness import (
    Case,
    ResultsCSV,
    Schema,
    add_common_args,
    fmt,
    format_table,
    locked,
    md_table,
    out_dir,
    run_cases,
    write_text,
)
from memopt.bench.isolate import last_line, spawn_measured
from memopt.core.errors import MemoptError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = Schema.of("instance tasks:int problem method status value:num bound:num solve_seconds:float "
                   "wall_seconds:float limit:float overrun:float max_rss_mb:float exit_status message")
KEY = ("instance", "problem", "method")
NAMES = {"method": lambda r: f"{r['problem']}/{r['method']}", "seconds": "solve_seconds"}
PROBLEMS = {
    "peak": ("peak", False, False),
    "time+recompute": ("time", True, False),
    "time+offload": ("time", False, True),
    "time+recompute+offload": ("time", True, True),
}
BUDGET = "0.5x"
QUICK_METHODS = {"peak": ["auto", "peak-cp"], "time+recompute": ["auto", "planner", "moccasin"]}


def big_graph(folder: str) -> str:
    """The generated 1,000-layer training graph (made once with ``memopt generate``)."""
    path = os.path.join(folder, "layered-n1000-s3-train.yaml")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        subprocess.run([sys.executable, "-m", "memopt", "generate", "layered", "--n", "1000", "--seed", "3",
                        "--train", "-o", path], check=True, stdout=subprocess.DEVNULL)
    return path


def instance_files(shared: str, big: str, quick: bool) -> list[str]:
    if quick:
        return [big]
    files = sorted(glob.glob(os.path.join(shared, "nodelink", "*.json")))
    shipped = sorted(glob.glob(os.path.join(ROOT, "instances", "*.yaml")))
    files += sorted(shipped, key=lambda p: -load_instance(p).n)[:4]
    files += sorted(glob.glob(os.path.join(ROOT, "instances", "nn", "*-train-b8.yaml")))
    return files + [big]


def command(path: str, problem: str, method: str, limit: float) -> tuple[str, ...]:
    objective, rc, off = PROBLEMS[problem]
    argv = [sys.executable, "-m", "memopt", "solve", path, "-m", method, "--objective", objective,
            "-t", f"{limit:g}", "-q"]
    if objective == "time":
        argv += ["--budget", BUDGET]
    argv += ["--recompute"] * rc + ["--offload"] * off
    return tuple(argv)


def cases(files: list[str], args: argparse.Namespace, limit: float) -> list[Case]:
    """Every (instance, problem, method the catalog says handles it)."""
    out = []
    want = None if args.methods is None else set(args.methods.split(","))
    problems = args.problems.split(",") if args.problems else (list(QUICK_METHODS) if args.quick else list(PROBLEMS))
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        if args.only and not any(t in name for t in args.only.split(",")):
            continue
        inst = load_instance(path)
        for problem in problems:
            objective, rc, off = PROBLEMS[problem]
            if off and inst.machine.bandwidth is None:
                continue
            try:
                req = make_request(inst, objective, budget=BUDGET if objective == "time" else None, recompute=rc,
                                   offload=off)
            except MemoptError as e:
                print(f"{name} {problem}: {e}", file=sys.stderr)
                continue
            methods = [m for m in CATALOG if CATALOG.fits(m, req)]
            if args.quick and args.methods is None:
                methods = [m for m in QUICK_METHODS.get(problem, methods) if m in methods]
            for m in methods:
                if want is not None and m not in want:
                    continue
                fields = {"instance": name, "tasks": inst.n, "problem": problem, "method": m, "limit": limit}
                out.append(Case(fields, time_limit=limit, command=command(path, problem, m, limit)))
    return out


def run_cli(case: Case, *, lock: str | None = None) -> dict[str, Any]:
    """Run ``memopt solve`` (the case's command) and read its result file: the case's row."""
    row = dict(case.fields)
    with tempfile.TemporaryDirectory(prefix="memopt-contract-") as tmp:
        result = os.path.join(tmp, "result.json")
        with locked(lock):
            run = spawn_measured([*case.command, "-o", result], kill_after=case.kill_margin, capture_stdout=True)
        row.update(wall_seconds=round(run.wall, 2), overrun=round(run.wall - case.time_limit, 2),
                   max_rss_mb=None if run.max_rss is None else round(run.max_rss / 2**20, 1),
                   exit_status="killed" if run.killed else str(run.returncode))
        if os.path.exists(result):
            with open(result) as f:
                res = json.load(f)
            row.update(status=res.get("status"), value=res.get("value"), bound=res.get("bound"),
                       solve_seconds=res.get("solve_seconds"), message=(res.get("message") or "")[:200])
        elif run.killed:
            row.update(status="killed")
        else:  # no plan to write: the summary line says the rest (status, seconds, why)
            row.update(summary(run.stdout.decode(errors="replace")))
            row.setdefault("message", last_line(run.stderr)[:200])
    return row


def summary(stdout: str) -> dict[str, Any]:
    """Status, solve seconds and message from ``memopt solve``'s summary line (``name | method | objective |
    status | ... | 1.23s of 5s (why)``)."""
    lines = [x for x in stdout.splitlines() if x.count(" | ") >= 3]
    if not lines:
        return {"status": "error"}
    parts = lines[-1].split(" | ")
    out: dict[str, Any] = {"status": parts[3].strip()}
    m = re.match(r"\s*([0-9.]+)s of [^ ]+\s*(?:\((.*)\))?\s*$", parts[-1])
    if m:
        out["solve_seconds"] = float(m.group(1))
        if m.group(2):
            out["message"] = m.group(2)[:200]
    return out


def markdown(rows: list[dict[str, Any]], limit: float, tolerance: float) -> str:
    over = [r for r in rows if r.get("overrun") is not None and r["overrun"] > tolerance]
    worst = max(rows, key=lambda r: r.get("overrun") or -1e9, default=None)
    biggest = max(rows, key=lambda r: r.get("max_rss_mb") or 0, default=None)
    cols = ["instance", "tasks", "problem", "method", "status", "value", "bound", "solve_seconds", "wall_seconds",
            "limit", "overrun", "max_rss_mb", "exit_status"]
    lines = ["# The run contract: every method within its time limit", "",
             (f"`python benchmarks/contract.py --time-limit {limit:g}`: each row is one `memopt solve` process, "
              "timed from start to exit (start-up and loading included); `overrun` = wall − limit; `max_rss_mb`: "
              "its peak resident memory (GNU time). Timings are provisional when other jobs shared the machine."),
             "", f"- runs: {len(rows)}; wall time over the limit by more than {tolerance:g} s: {len(over)}",
             (f"- solve time (the `memopt solve` summary's) over the limit by more than {tolerance:g} s: "
              f"{sum(1 for r in rows if (r.get('solve_seconds') or 0) > limit + tolerance)}")]
    if worst is not None:
        lines.append(f"- worst overrun: {fmt(worst.get('overrun'))} s ({worst['instance']} {worst['problem']} "
                     f"{worst['method']})")
    if biggest is not None:
        lines.append(f"- largest memory: {fmt(biggest.get('max_rss_mb'))} MB ({biggest['instance']} "
                     f"{biggest['problem']} {biggest['method']})")
    errors = [r for r in rows if r.get("status") in ("error", "killed")]
    lines.append(f"- errors or kills: {len(errors)}")
    if over:
        lines += ["", "## Over the limit", "",
                  md_table(cols, [[r.get(c) for c in cols] for r in over], "lrll" + "r" * 9)]
    lines += ["", "## Every run", "", md_table(cols, [[r.get(c) for c in cols] for r in rows], "lrll" + "r" * 9)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "benchmarks"))
    ap.add_argument("--time-limit", type=float, default=None, help="-t of every run (default 60; --quick: 5)")
    ap.add_argument("--tolerance", type=float, default=5.0, help="seconds over the limit that still keep the contract")
    ap.add_argument("--only", default=None,
                    help="only instances whose name contains one of these texts (comma separated)")
    ap.add_argument("--methods", default=None, help="only these methods (comma separated)")
    ap.add_argument("--problems", default=None, help="comma separated, of: " + ", ".join(PROBLEMS))
    add_common_args(ap)
    args = ap.parse_args(argv)
    limit = args.time_limit or (5.0 if args.quick else 60.0)
    out = out_dir(args)
    big = big_graph(os.path.join("results", "tmp", "contract-instances"))
    table = ResultsCSV(os.path.join(out, "contract.csv"), SCHEMA, KEY)
    rows = run_cases(cases(instance_files(args.shared, big, args.quick), args, limit), table, fresh=args.fresh,
                     lock=args.lock, names=NAMES, runner=run_cli)
    print()
    print(format_table(rows, NAMES))
    md = markdown(table.rows, limit, args.tolerance)  # every row of the table (earlier runs resumed included)
    write_text(os.path.join(out, "contract.md"), md)
    print()
    print("\n".join(md.split("\n## ")[0].splitlines()[4:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
