"""Benchmark figures: overhead against budget, value against the best bound, performance profiles.

Written with the helpers of :mod:`memopt.plots` (matplotlib's Agg backend,
the optional extra ``plot``), from the rows of a results table
(:mod:`memopt.bench.table`). Each function writes the image files it is
given and returns their paths.

- :func:`plot_overhead`: overhead against budget, one panel per instance,
  one line per method (objective ``time``).
- :func:`plot_value_ratio`: each method's value relative to the best proven
  bound, per instance (objective ``peak``).
- :func:`plot_profile`: a performance profile (Dolan & Moré 2002) of solve
  time: for each method, the fraction of problems it solved within a factor
  τ of the fastest method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from memopt.bench.table import number
from memopt.core.errors import MemoptError
from memopt.plots import method_styles, pyplot, save_figure


def budget_ratio(row: dict[str, str]) -> float | None:
    """A row's budget as a fraction of its instance's best baseline peak."""
    b = (row.get("budget") or "").strip().lower()
    if b.endswith("x"):
        return number(b[:-1])
    bv, ref = number(row.get("budget_value")), number(row.get("baseline_peak"))
    if bv is None or not ref:
        return None
    return bv / ref


def _label(row: dict[str, str]) -> str:
    return row.get("label") or row["instance"]


def _solved(row: dict[str, str]) -> bool:
    return row.get("status") in ("optimal", "feasible") and number(row.get("value")) is not None


def _grid(n: int, ncols: int = 4) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def plot_overhead(rows: Sequence[dict[str, str]], paths: str | Sequence[str], *,
                  styles: dict[str, dict[str, Any]] | None = None, title: str | None = None) -> list[str]:
    """Overhead (makespan / Σ time − 1) against the budget ratio: one panel per instance.

    A point is the best overhead over the repeats of a (method, budget);
    filled markers are proven optimal, hollow ones feasible. Budgets where
    a method found no plan have no point.
    """
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    rows = [r for r in rows if r.get("objective") == "time"]
    if not rows:
        raise MemoptError("no rows with objective 'time' to plot overhead against budget")
    styles = styles or method_styles(r["method"] for r in rows)
    instances = sorted({_label(r) for r in rows}, key=lambda s: (s.lower(), s))
    ratios = sorted({x for x in (budget_ratio(r) for r in rows) if x is not None})
    nr, nc = _grid(len(instances))
    fig, axes = plt.subplots(nr, nc, figsize=(3.0 * nc + 0.4, 2.5 * nr + 0.9), squeeze=False)
    used: set[str] = set()
    for idx, name in enumerate(instances):
        ax = axes[idx // nc][idx % nc]
        mine = [r for r in rows if _label(r) == name]
        drawn = False
        for method in sorted({r["method"] for r in mine}):
            best: dict[float, tuple[float, bool]] = {}
            for r in mine:
                if r["method"] != method or not _solved(r):
                    continue
                x, y = budget_ratio(r), number(r.get("overhead"))
                if x is None or y is None:
                    continue
                y *= 100
                opt = r["status"] == "optimal"
                if x not in best or y < best[x][0] or (y == best[x][0] and opt):
                    best[x] = (y, opt)
            if not best:
                continue
            used.add(method)
            drawn = True
            st = styles[method]
            pts = sorted(best.items())
            ax.plot([p[0] for p in pts], [p[1][0] for p in pts], color=st["color"], linewidth=1, alpha=0.8,
                    linestyle=st.get("linestyle", "-"))
            for bx, (by, opt) in pts:
                ax.plot([bx], [by], marker=st["marker"], color=st["color"], markersize=5, linestyle="none",
                        markerfacecolor=st["color"] if opt else "white")
        ax.set_title(name, fontsize=9)
        ax.set_ylim(bottom=0)  # makespan >= Σ time: the overhead is never negative
        if ratios:
            lo, hi = ratios[0], ratios[-1]
            pad = 0.06 * (hi - lo) if hi > lo else 0.05
            ax.set_xlim(lo - pad, hi + pad)  # the same budgets axis in every panel
            spread = min((b - a for a, b in zip(ratios, ratios[1:])), default=1.0)
            if len(ratios) <= 6 and spread >= (hi - lo) / 7:
                ax.set_xticks(ratios)  # the budgets of the grid, e.g. 0.8, 0.9, 1
            else:
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        if not drawn:
            ax.text(0.5, 0.5, "no plan at any budget", transform=ax.transAxes, ha="center", va="center",
                    fontsize=8, color="0.4")
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
        if idx % nc == 0:
            ax.set_ylabel("overhead (%)", fontsize=8)
        if idx // nc == nr - 1 or idx + nc >= len(instances):
            ax.set_xlabel("budget / baseline peak", fontsize=8)
    for idx in range(len(instances), nr * nc):
        axes[idx // nc][idx % nc].set_visible(False)
    _legend(fig, styles, used, extra_note="filled: proven optimal; hollow: feasible")
    fig.suptitle(title or "Overhead against budget", fontsize=11)
    fig.tight_layout(rect=(0, 0.06 if nr > 1 else 0.1, 1, 0.96))
    return save_figure(fig, paths)


def _legend(fig, styles, used, extra_note: str | None = None) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=styles[m]["color"], marker=styles[m]["marker"], label=m, markersize=5,
                      linestyle=styles[m].get("linestyle", "-")) for m in sorted(used)]
    if extra_note:
        handles.append(Line2D([], [], linestyle="none", label=extra_note))
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=8, frameon=False)


def plot_value_ratio(rows: Sequence[dict[str, str]], paths: str | Sequence[str], *,
                     styles: dict[str, dict[str, Any]] | None = None, title: str | None = None,
                     xlabel: str = "value / best proven lower bound") -> list[str]:
    """Each method's best value per problem relative to the best bound found by any method.

    Every bound in a results table is proven, so the largest one over the
    methods is a valid lower bound: a ratio of 1 is a proven optimum.
    """
    plt = pyplot()
    problems: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in rows:
        problems.setdefault((_label(r), r.get("budget") or ""), []).append(r)
    if not problems:
        raise MemoptError("no rows to plot")
    styles = styles or method_styles(r["method"] for r in rows)
    keys = sorted(problems, key=lambda k: (k[0].lower(), k[1]))
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(keys) + 1.6))
    used: set[str] = set()
    methods = sorted({r["method"] for r in rows})
    offsets = {m: (i - (len(methods) - 1) / 2) * min(0.12, 0.6 / max(1, len(methods))) for i, m in enumerate(methods)}
    for yi, key in enumerate(keys):
        rs = problems[key]
        bounds = [number(r.get("bound")) for r in rs]
        lb = max([b for b in bounds if b is not None] or [0.0])
        if lb <= 0:
            continue
        for method in methods:
            vals = [number(r["value"]) for r in rs if r["method"] == method and _solved(r)]
            if not vals:
                continue
            used.add(method)
            st = styles[method]
            opt = any(r["status"] == "optimal" for r in rs if r["method"] == method)
            ax.plot([min(vals) / lb], [len(keys) - 1 - yi + offsets[method]], marker=st["marker"],
                    color=st["color"], linestyle="none", markersize=5,
                    markerfacecolor=st["color"] if opt else "white")
    ax.set_yticks(range(len(keys)))
    one_budget = len({k[1] for k in keys}) == 1  # then the budget says nothing: leave it out
    ax.set_yticklabels([k[0] if one_budget else f"{k[0]} {k[1]}".strip() for k in reversed(keys)], fontsize=7)
    ax.axvline(1.0, color="0.5", linewidth=0.8)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(title or "Value relative to the best lower bound", fontsize=10)
    _legend(fig, styles, used, extra_note="filled: proven optimal")
    fig.tight_layout(rect=(0, min(0.2, 0.45 / fig.get_figheight()), 1, 1))  # room for the legend, in inches
    return save_figure(fig, paths)


def performance_profile(times: dict[str, dict[Any, float]]) -> dict[str, list[float]]:
    """Ratios r[p, s] = t[p, s] / min_s t[p, s] of Dolan & Moré (2002).

    ``times[method][problem]`` is a solve time, ``math.inf`` (or absent)
    when the method did not solve the problem. Problems no method solved
    are left out. Returns each method's sorted ratios (``inf`` included).
    """
    problems = set()
    for t in times.values():
        problems.update(t)
    out: dict[str, list[float]] = {m: [] for m in times}
    for p in problems:
        best = min(times[m].get(p, math.inf) for m in times)
        if not math.isfinite(best):
            continue
        for m in times:
            t = times[m].get(p, math.inf)
            out[m].append(t / best if best > 0 else (1.0 if t == 0 else math.inf))
    return {m: sorted(v) for m, v in out.items()}


def plot_profile(rows: Sequence[dict[str, str]], paths: str | Sequence[str], *,
                 styles: dict[str, dict[str, Any]] | None = None, title: str | None = None,
                 solved: Sequence[str] = ("optimal", "feasible"), floor: float = 0.01) -> list[str]:
    """Performance profile of solve time: ρ_s(τ) = share of problems solved within τ × the fastest.

    A problem is an (instance, budget); a method solved it when a run's
    status is in ``solved`` (median time over the repeats). Times below
    ``floor`` seconds count as ``floor`` (timer noise would otherwise make
    ratios of microseconds meaningful).
    """
    plt = pyplot()
    times: dict[str, dict[Any, list[float]]] = {}
    for r in rows:
        times.setdefault(r["method"], {})
        key = (r["instance_file"], r.get("budget") or "")
        t = number(r.get("seconds"))
        ok = r.get("status") in solved and t is not None
        times[r["method"]].setdefault(key, []).append(max(t, floor) if ok else math.inf)
    if not times:
        raise MemoptError("no rows to plot")
    med = {m: {p: _median(v) for p, v in d.items()} for m, d in times.items()}
    ratios = performance_profile(med)
    n = max((len(v) for v in ratios.values()), default=0)
    styles = styles or method_styles(times)
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    finite = [x for v in ratios.values() for x in v if math.isfinite(x)]
    tau_max = max(finite + [2.0]) * 1.25
    for m in sorted(ratios):
        v = ratios[m]
        if not v:
            continue
        xs = [1.0] + [x for x in v if math.isfinite(x)] + [tau_max]
        ys = [0.0] + [(i + 1) / n for i, x in enumerate(v) if math.isfinite(x)]
        ys.append(ys[-1])
        st = styles[m]
        ax.step(xs, ys, where="post", color=st["color"], linestyle=st.get("linestyle", "-"), linewidth=1.4,
                label=m)
    ax.set_xscale("log", base=2)
    ax.set_xlim(0.93, tau_max)  # a little room so the curves at τ = 1 and ρ = 0 or 1 are not hidden by the frame
    ax.set_ylim(-0.02, 1.04)
    ax.set_xlabel("τ (time / fastest method's time)", fontsize=9)
    ax.set_ylabel("share of problems solved within τ", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside: curves stay visible
    what = "proven optimal" if tuple(solved) == ("optimal",) else "with a plan"
    ax.set_title((title or "Performance profile of solve time") + f"\n{n} problems; solved = {what}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, paths)


def _median(v: list[float]) -> float:
    s = sorted(v)
    k = len(s) // 2
    if len(s) % 2:
        return s[k]
    a, b = s[k - 1], s[k]
    return (a + b) / 2 if math.isfinite(a) and math.isfinite(b) else b


__all__ = ["budget_ratio", "performance_profile", "plot_overhead", "plot_profile", "plot_value_ratio"]
