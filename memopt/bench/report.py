"""From a results CSV to a Markdown report and figures.

:func:`make_report` groups the rows by *problem* (objective, with or without
recomputation/offloading, makespan limit) and writes, for each:

- a summary table per method (runs, plans, proven optima, infeasible,
  unknown, errors, problems where it found the best value, mean gap,
  shifted geometric mean of the solve time);
- a table per instance and budget (one column per method);
- figures: overhead against budget (objective ``time``) or value against
  the best proven bound (objective ``peak``), and the performance profile
  of solve time.

All of it goes to ``report.md`` and image files in one folder. The
``memopt report`` command writes a report only where it will not destroy
another: it marks its ``report.md`` with :data:`REPORT_MARK` and refuses to
overwrite one without the mark (a committed report, one a benchmark wrote)
unless told to (``--force``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from memopt.bench.table import number, read_rows
from memopt.core.errors import MemoptError

#: first line of a report written by ``memopt report`` (an HTML comment: invisible once rendered)
REPORT_MARK = "<!-- written by memopt report: running it again rewrites this file -->"


@dataclass
class Report:
    """What :func:`make_report` wrote."""

    markdown: str
    path: str | None = None
    figures: list[str] = field(default_factory=list)


def _problem(row: dict[str, str]) -> tuple[str, str, str, str]:
    return (row["objective"], row["recompute"], row["offload"], row["max_makespan"])


def problem_name(p: tuple[str, str, str, str]) -> str:
    """``time+recompute``, ``peak-T120``...: the slug of a problem, for headings and file names."""
    obj, rc, off, T = p
    s = obj + ("+recompute" if rc == "true" else "") + ("+offload" if off == "true" else "")
    return s + (f"-T{T}" if T else "")


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "—"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.{digits}g}"


def _seconds(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}s" if x >= 0.01 else "<0.01s"


def shifted_geomean(values: Sequence[float], shift: float = 1.0) -> float | None:
    """exp(mean(log(t + shift))) − shift: the usual average of solve times (shift 1 s)."""
    vs = [v for v in values if v is not None and math.isfinite(v)]
    if not vs:
        return None
    return math.exp(sum(math.log(v + shift) for v in vs) / len(vs)) - shift


_RANK = {"optimal": 0, "feasible": 1, "infeasible": 2, "unknown": 3, "error": 4}


def _cell(rows: list[dict[str, str]], objective: str) -> tuple[str, float | None]:
    """A table cell for the repeats of one (problem, method): best value, median seconds."""
    best = min(rows, key=lambda r: (_RANK.get(r["status"], 9), number(r["value"]) if r["value"] else math.inf))
    secs = sorted(s for s in (number(r["seconds"]) for r in rows) if s is not None)
    med = secs[len(secs) // 2] if secs else None
    st = best["status"]
    if st in ("optimal", "feasible") and best["value"]:
        if objective == "time" and number(best["overhead"]) is not None:
            text = f"+{100 * number(best['overhead']):.1f}%"
        else:
            text = _fmt(number(best["value"]))
        if st == "optimal":
            text += " ✓"
        return f"{text} ({_seconds(med)})", number(best["value"])
    return st, None


def _md_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    esc = [[c.replace("|", "\\|") for c in r] for r in [header] + rows]
    lines = ["| " + " | ".join(esc[0]) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines)


def summarize(rows: list[dict[str, str]], objective: str) -> tuple[str, str]:
    """The two Markdown tables of one problem: per method, and per instance × budget."""
    methods = sorted({r["method"] for r in rows})
    cells: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for r in rows:
        cells.setdefault((r["instance_file"], r["budget"], r["method"]), []).append(r)
    instances = sorted({(r.get("label", r["instance"]), r["instance_file"], r["tasks"]) for r in rows},
                       key=lambda t: (t[0].lower(), t[1]))
    budgets = sorted({r["budget"] for r in rows}, key=lambda b: (-(number(b.rstrip("x")) or 0), b))
    # the best value per (instance, budget): who found it
    best: dict[tuple[str, str], float] = {}
    for (f, b, _m), rs in cells.items():
        for r in rs:
            v = number(r["value"])
            if r["status"] in ("optimal", "feasible") and v is not None:
                best[(f, b)] = min(best.get((f, b), math.inf), v)
    per_method = []
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        count = {s: sum(1 for r in mine if r["status"] == s) for s in _RANK}
        gaps = [number(r["gap"]) for r in mine
                if r["status"] in ("optimal", "feasible") and number(r["gap"]) is not None]
        wins = sum(1 for (f, b), v in best.items()
                   if any(number(r["value"]) == v and r["status"] in ("optimal", "feasible")
                          for r in cells.get((f, b, m), [])))
        extra = []
        if objective == "time":
            ovs = [number(r["overhead"]) for r in mine
                   if r["status"] in ("optimal", "feasible") and number(r["overhead"]) is not None]
            extra = [f"{100 * sum(ovs) / len(ovs):.1f}%" if ovs else "—"]
        per_method.append([
            m, str(len(mine)), str(count["optimal"] + count["feasible"]), str(count["optimal"]),
            str(count["infeasible"]), str(count["unknown"]), str(count["error"]), str(wins),
            f"{100 * sum(gaps) / len(gaps):.2f}%" if gaps else "—", *extra,
            _seconds(shifted_geomean([number(r["seconds"]) for r in mine])),
        ])
    head = ["method", "runs", "plans", "optimal", "infeasible", "unknown", "error", "best", "mean gap"]
    if objective == "time":
        head.append("mean overhead")
    head.append("time (sgm)")
    t1 = _md_table(head, per_method)
    detail = []
    for name, f, n in instances:
        for b in budgets:
            if not any((f, b, m) in cells for m in methods):
                continue
            line = [name, n, b or "machine"]
            for m in methods:
                rs = cells.get((f, b, m))
                line.append(_cell(rs, objective)[0] if rs else "")
            detail.append(line)
    t2 = _md_table(["instance", "tasks", "budget", *methods], detail, ["l", "r", "l"] + ["r"] * len(methods))
    return t1, t2


def add_labels(rows: list[dict[str, str]]) -> None:
    """Give each row a short ``label``: its instance file's stem (the instance name if stems clash)."""
    stems: dict[str, set[str]] = {}
    for r in rows:
        stems.setdefault(os.path.splitext(os.path.basename(r["instance_file"]))[0], set()).add(r["instance_file"])
    for r in rows:
        stem = os.path.splitext(os.path.basename(r["instance_file"]))[0]
        r["label"] = stem if len(stems[stem]) == 1 else r["instance"]


def make_report(csv_path: str, out_dir: str | None = None, *, formats: Sequence[str] = ("png", "svg"),
                profiles: Sequence[str] = ("plan", "optimal"), title: str | None = None,
                mark: bool = False, overwrite: bool = True) -> Report:
    """Write ``report.md`` and the figures of ``csv_path`` to ``out_dir``.

    ``out_dir`` defaults to the CSV's name without ``.csv`` (where
    ``memopt bench`` put the plans). ``profiles``: which performance
    profiles of solve time to draw — ``plan`` (solving = finding a plan:
    ``PROBLEM-profile``) and/or ``optimal`` (solving = proving the optimum:
    ``PROBLEM-profile-optimal``, drawn when some run proved one).
    ``mark`` puts :data:`REPORT_MARK` on the first line; with
    ``overwrite=False`` an existing ``report.md`` without that mark is an
    error (nothing is written): the command's guard for committed reports.
    """
    from memopt.bench.figures import plot_overhead, plot_profile, plot_value_ratio
    from memopt.plots import method_styles

    rows = read_rows(csv_path)
    if not rows:
        raise MemoptError(f"{csv_path}: no runs in the table")
    add_labels(rows)
    out_dir = out_dir or os.path.splitext(csv_path)[0]
    path = os.path.join(out_dir, "report.md")
    if not overwrite and os.path.exists(path) and not _marked(path):
        raise MemoptError(f"{path} exists and was not written by memopt report (e.g. a committed report): "
                          "give -o DIR to write the report elsewhere, or --force to overwrite it")
    os.makedirs(out_dir, exist_ok=True)
    styles = method_styles(r["method"] for r in rows)
    name = title or os.path.splitext(os.path.basename(csv_path))[0]
    groups: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault(_problem(r), []).append(r)
    n_inst = len({r["instance_file"] for r in rows})
    lines = [REPORT_MARK] if mark else []
    lines += [
        f"# Results: {name}",
        "",
        (f"{len(rows)} runs of {len({r['method'] for r in rows})} methods on {n_inst} instances, "
         f"from `{csv_path}`. Every value is the evaluator's, re-checked from the saved plan file."),
        "",
        ("Cells show the value (objective `time`: the overhead, makespan / Σ time − 1) and the median "
         "solve time; ✓ marks a proven optimum. `best` counts the problems where a method found the best "
         "value; `time (sgm)` is the shifted geometric mean (shift 1 s) of the solve time over all runs."),
    ]
    limits = sorted({r["time_limit"] for r in rows})
    threads = sorted({r["threads"] for r in rows})
    lines.append(f"Time limit per run: {', '.join((t + ' s') if t else 'none' for t in limits)}; "
                 f"threads per run: {', '.join(threads)}.")
    figures: list[str] = []
    for p in sorted(groups):
        g = groups[p]
        slug = problem_name(p)
        t1, t2 = summarize(g, p[0])
        lines += ["", f"## {slug}", "", t1, "", t2, ""]
        if p[0] == "time":
            fig = [os.path.join(out_dir, f"{slug}-overhead.{ext}") for ext in formats]
            ok = any(r["status"] in ("optimal", "feasible") for r in g)
            if ok:
                figures += plot_overhead(g, fig, styles=styles, title=f"Overhead against budget ({slug})")
                lines.append(f"![overhead against budget]({os.path.basename(fig[0])})")
        else:
            fig = [os.path.join(out_dir, f"{slug}-ratio.{ext}") for ext in formats]
            if any(number(r["bound"]) for r in g) and any(r["status"] in ("optimal", "feasible") for r in g):
                xl = "peak / best proven lower bound" if p[0] == "peak" else "value / best proven lower bound"
                figures += plot_value_ratio(g, fig, styles=styles, xlabel=xl,
                                            title=f"Value against the best lower bound ({slug})")
                lines.append(f"![value against the best bound]({os.path.basename(fig[0])})")
        for kind in profiles:
            solved = ("optimal",) if kind == "optimal" else ("optimal", "feasible")
            suffix = "-optimal" if kind == "optimal" else ""
            prof = [os.path.join(out_dir, f"{slug}-profile{suffix}.{ext}") for ext in formats]
            if any(r["status"] in solved for r in g):
                figures += plot_profile(g, prof, styles=styles, solved=solved,
                                        title=f"Performance profile of solve time ({slug})")
                what = "proving the optimum" if kind == "optimal" else "finding a plan"
                lines += ["", f"![performance profile of solve time, {what}]({os.path.basename(prof[0])})"]
    errors = [r for r in rows if r["status"] == "error"]
    if errors:
        lines += ["", "## Errors", ""]
        lines.append(_md_table(["instance", "method", "budget", "message"],
                               [[r["label"], r["method"], r["budget"], r["message"][:160]] for r in errors],
                               ["l", "l", "l", "l"]))
    md = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(md)
    return Report(markdown=md, path=path, figures=figures)


def _marked(path: str) -> bool:
    """Whether the report at ``path`` was written by ``memopt report`` (its first line is the mark)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().rstrip("\n") == REPORT_MARK


__all__ = ["REPORT_MARK", "Report", "make_report", "problem_name", "shifted_geomean", "summarize"]
