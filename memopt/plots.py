"""Figures for papers: a plan's memory over its stages, and the memory/time curve.

Every function writes image files (PNG, SVG or PDF, by extension) with
matplotlib's Agg backend (optional extra ``plot``; imported inside the
functions so ``memopt --help`` stays fast), and returns the paths written.

- :func:`plot_plan`: the memory in use over the stages of a plan, replayed
  by the evaluator (:attr:`~memopt.core.evaluate.Evaluation.memory`), against the
  budget; below it, one lane per datum that is offloaded or recomputed,
  showing when it is in fast memory, when a copy is in slow memory, and its
  offloads, reloads and recomputations.
- :func:`plot_curve`: the memory/time trade-off of ``memopt curve``.

The benchmark comparisons (overhead against budget, value against the best
bound, performance profiles) are in :mod:`memopt.bench.figures`; they share
the helpers here (:func:`pyplot`, :func:`save_figure`, :func:`rc_context`,
:func:`method_styles`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, FREE, OFFLOAD, RELOAD, Plan

MARKERS = "osD^vP*Xh<>p"


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MemoptError("figures need matplotlib: pip install 'memopt[plot]'") from None
    matplotlib.use("Agg", force=True)  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


FIGURE_EXTENSIONS = (".png", ".svg", ".pdf")


def check_figure_paths(paths: str | Sequence[str], where: str = "") -> list[str]:
    """The paths as a list; an input error (``where`` first: the command and option) unless each names a
    figure format — before any work, and whether or not matplotlib is installed: the mistake is the path's."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [os.fspath(paths)]
    for p in paths:
        if os.path.splitext(p)[1].lower() not in FIGURE_EXTENSIONS:
            raise MemoptError(f"{where}{p}: figures are .png, .svg or .pdf files")
    return list(paths)


def save_figure(fig, paths: str | Sequence[str]) -> list[str]:
    """Write ``fig`` to every path (format by extension), reproducibly."""
    plt = pyplot()
    try:
        paths = check_figure_paths(paths)
    except MemoptError:
        plt.close(fig)
        raise
    out = []
    for p in paths:
        ext = os.path.splitext(p)[1].lower()
        d = os.path.dirname(p)
        if d:
            os.makedirs(d, exist_ok=True)
        # no dates in the files: a re-made figure is byte-identical when nothing changed
        meta = {"Date": None} if ext in (".svg", ".pdf") else {}
        with rc_context({"svg.hashsalt": "memopt"}):
            fig.savefig(p, dpi=150, bbox_inches="tight", metadata=meta)
        out.append(p)
    plt.close(fig)
    return out


def rc_context(params: dict[str, Any]):
    import matplotlib

    return matplotlib.rc_context(params)


def method_styles(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """One colour and marker per method, the same in every figure of a report."""
    names = sorted(set(names))
    colors = [f"C{i}" for i in range(10)]
    dashes = ["-", "--", ":", "-."]  # past ten methods the colours repeat: the line style does not
    return {n: {"color": colors[i % 10], "marker": MARKERS[i % len(MARKERS)], "linestyle": dashes[(i // 10) % 4]}
            for i, n in enumerate(names)}


# --------------------------------------------------------------------- plan
@dataclass
class _Lane:
    """One datum's story in a plan, in x coordinates."""

    datum: int
    fast: list[tuple[float, float]]
    slow: list[tuple[float, float]]
    offloads: list[float]
    reloads: list[float]
    recomputes: list[float]


def _stage_spans(durations: Sequence[float], n_stages: int, x: str) -> list[tuple[float, float]]:
    if x == "stage":
        # stage k (1-based) spans [k - 0.5, k + 0.5], so the integer ticks name the stages
        return [(k + 0.5, k + 1.5) for k in range(n_stages)]
    spans, t = [], 0.0
    for k in range(n_stages):
        d = float(durations[k]) if k < len(durations) else 0.0
        spans.append((t, t + d))
        t += d
    return spans


def event_positions(inst: Instance, plan: Plan, spans: list[tuple[float, float]], x: str) -> list[list[float]]:
    """x of every event: ``pos[k][i]``, i = 0 the start of stage k, i ≥ 1 its i-th event.

    By stage, the events of a stage are evenly spaced inside it; by time, a
    compute sits where it starts (the computes of a stage run one after
    another) and a free where the computes before it have ended.
    """
    out = []
    tix = inst.task_index
    for k, stage in enumerate(plan.stages[:len(spans)]):
        x0, x1 = spans[k]
        n = len(stage)
        work = [inst.time[tix[e.target]] if e.kind == COMPUTE and e.target in tix else 0 for e in stage]
        if x == "time" and sum(work) > 0:
            pos, t = [x0], x0
            for w in work:
                pos.append(t)
                t += w
        else:
            pos = [x0 + (x1 - x0) * i / (n + 1) for i in range(n + 1)]
        out.append(pos)
    return out


def plan_lanes(inst: Instance, plan: Plan, spans: list[tuple[float, float]],
               pos: list[list[float]]) -> list[_Lane]:
    """Replay ``plan`` (assumed valid) and describe every datum that is offloaded or recomputed."""
    m = inst.m
    dix, tix = inst.datum_index, inst.task_index
    open_fast: list[float | None] = [None] * m
    lanes = {j: _Lane(j, [], [], [], [], []) for j in range(m)}
    in_slow = [False] * m
    runs = [0] * inst.n
    touched: set[int] = set()
    end = spans[-1][1] if spans else 0.0
    for k, stage in enumerate(plan.stages):
        if k >= len(spans):
            break
        x0, x1 = spans[k]
        n = len(stage)
        first_compute = next((i for i, e in enumerate(stage) if e.kind == COMPUTE), n)
        reloads, offloads = [], []
        for e in stage:
            if e.kind == RELOAD and e.target in dix:
                reloads.append(dix[e.target])
            elif e.kind == OFFLOAD and e.target in dix:
                offloads.append(dix[e.target])
        for i, e in enumerate(stage, 1):
            if e.kind == FREE and e.target in dix:
                j = dix[e.target]
                x = x0 if i <= first_compute else pos[k][i]
                if open_fast[j] is not None:
                    lanes[j].fast.append((open_fast[j], x))
                    open_fast[j] = None
            elif e.kind == COMPUTE and e.target in tix:
                v = tix[e.target]
                x = pos[k][i]
                runs[v] += 1
                for j in inst.outputs[v]:
                    if runs[v] > 1:
                        lanes[j].recomputes.append(x)
                        touched.add(j)
                    if open_fast[j] is None:
                        open_fast[j] = x
        mid = (x0 + x1) / 2  # a transfer runs across its stage
        for j in reloads:
            lanes[j].reloads.append(mid)
            touched.add(j)
            if open_fast[j] is None:
                open_fast[j] = x0  # its memory is taken from the stage start
        for j in offloads:
            lanes[j].offloads.append(mid)
            touched.add(j)
            if not in_slow[j]:
                in_slow[j] = True
                lanes[j].slow.append((x1, end))
    for j in range(m):
        if open_fast[j] is not None:
            lanes[j].fast.append((open_fast[j], end))
    return [lanes[j] for j in sorted(touched, key=lambda j: (min([x for x, _ in lanes[j].fast] or [end]), j))]


def plot_plan(inst: Instance, plan: Plan, paths: str | Sequence[str], *, budget: int | None = None,
              x: str = "stage", title: str | None = None, max_lanes: int = 30) -> list[str]:
    """Memory in use over the stages of ``plan`` against the budget; offloaded/recomputed data below.

    ``x="stage"`` puts stage k on [k-1, k) (events of a stage evenly spaced
    inside it); ``x="time"`` gives each stage its duration. ``budget``
    defaults to the machine's. At most ``max_lanes`` data get a lane (the
    largest ones); the figure says how many more there are.
    """
    from memopt.core.evaluate import evaluate

    if x not in ("stage", "time"):
        raise MemoptError(f"x axis must be 'stage' or 'time', got {x!r}")
    plt = pyplot()
    ev = evaluate(inst, plan, budget=budget, trace=True)
    M = None if ev.budget is None else float(ev.budget)
    n_stages = len(plan.stages) if ev.complete else (len(ev.stage_durations) + 1)
    spans = _stage_spans(ev.stage_durations, max(n_stages, 1), x)
    xs, ys = [], []
    pos = event_positions(inst, plan, spans, x)
    if ev.peak > 1e300:  # a figure holds doubles: sizes beyond them cannot be drawn truthfully
        raise MemoptError(f"{inst.where}: sizes beyond 1e300 cannot be drawn (peak {ev.peak})")
    for p in ev.memory:
        xs.append(pos[p.stage - 1][p.event])
        ys.append(float(p.memory))  # exact integers beyond int64 confuse matplotlib: draw them as doubles
    end = spans[min(len(spans), len(plan.stages)) - 1][1] if spans and plan.stages else 0.0
    if xs:
        xs.append(end)
        ys.append(ys[-1])
    lanes = plan_lanes(inst, plan, spans[:len(plan.stages)], pos) if ev.complete else []
    hidden = 0
    if len(lanes) > max_lanes:
        keep = set(sorted((ln.datum for ln in lanes), key=lambda j: -inst.size[j])[:max_lanes])
        hidden = len(lanes) - len(keep)
        lanes = [ln for ln in lanes if ln.datum in keep]

    h_lanes = 0.9 + 0.24 * len(lanes) if lanes else 0
    fig = plt.figure(figsize=(8.0, 3.2 + h_lanes))
    if lanes:
        gs = fig.add_gridspec(2, 1, height_ratios=[3.2, h_lanes], hspace=0.08)
        ax = fig.add_subplot(gs[0])
        axl = fig.add_subplot(gs[1], sharex=ax)
    else:
        ax = fig.add_subplot(1, 1, 1)
        axl = None
    units = inst.units or {}
    top = max([M or 0] + ys + [1])
    big = top >= 10_000  # bytes of a real network: 9.4 G reads better than 9439356864
    from matplotlib.ticker import EngFormatter

    eng = EngFormatter(unit=units.get("size", ""), places=3, sep=" ")
    num = (lambda v: eng.format_data(v)) if big else (lambda v: f"{v:g}")
    ax.fill_between(xs, ys, step="post", alpha=0.25, color="C0", linewidth=0)
    ax.step(xs, ys, where="post", color="C0", linewidth=1.2, label="memory in use")
    if M is not None:
        ax.axhline(M, color="C3", linestyle="--", linewidth=1.2, label=f"budget {num(M)}")
    if ys:
        k = max(range(len(ys)), key=lambda i: ys[i])
        ax.plot([xs[k]], [ys[k]], marker="v", color="black", markersize=5, linestyle="none",
                label=f"peak {num(ev.peak)}")
    ax.set_ylim(0, top * 1.22)  # headroom for the one-line legend
    if big:
        ax.yaxis.set_major_formatter(EngFormatter(unit=units.get("size", ""), sep=" "))
    start = spans[0][0] if spans else 0.0
    ax.set_xlim(start, end if end > start else start + 1)
    if x == "stage":
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(nbins=12, integer=True, min_n_ticks=1))
    ax.set_ylabel("fast memory" if big or not units.get("size") else f"fast memory ({units['size']})")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9, ncol=3)
    state = "" if ev.valid else f" — INVALID: {ev.violation}"
    ttl = title or inst.name
    ax.set_title(f"{ttl}: peak {num(ev.peak)}, makespan {ev.makespan:g} (overhead {100 * ev.overhead:.1f}%){state}",
                 fontsize=10)
    xlabel = "stage" if x == "stage" else (f"time ({units['time']})" if units.get("time") else "time")
    if axl is None:
        ax.set_xlabel(xlabel)
        note = "no offloading or recomputation" if ev.complete else "plan replay stopped at the broken rule"
        ax.text(0.01, 0.97, note, transform=ax.transAxes, fontsize=8, va="top", color="0.35")
        return save_figure(fig, paths)

    plt.setp(ax.get_xticklabels(), visible=False)
    recomputed = {ln.datum for ln in lanes if ln.recomputes}
    offloaded = {ln.datum for ln in lanes if ln.offloads}
    for row, ln in enumerate(lanes):
        y = len(lanes) - 1 - row
        color = "C1" if ln.datum in recomputed and ln.datum not in offloaded else (
            "C2" if ln.datum in recomputed else "C0")
        for a, b in ln.slow:
            axl.broken_barh([(a, max(b - a, 1e-9))], (y - 0.12, 0.24), facecolors="0.8", edgecolor="none")
        for a, b in ln.fast:
            axl.broken_barh([(a, max(b - a, 1e-9))], (y - 0.32, 0.64), facecolors=color, edgecolor="none", alpha=0.85)
        if ln.offloads:
            axl.plot(ln.offloads, [y] * len(ln.offloads), "v", color="black", markersize=4)
        if ln.reloads:
            axl.plot(ln.reloads, [y] * len(ln.reloads), "^", color="black", markersize=4)
        if ln.recomputes:
            axl.plot(ln.recomputes, [y] * len(ln.recomputes), "o", color="black", markersize=3.5,
                     markerfacecolor="white")
    labels = [f"{inst.data[ln.datum].id[:22]} ({num(inst.size[ln.datum])})" for ln in lanes]
    axl.set_yticks(range(len(lanes)))
    axl.set_yticklabels(list(reversed(labels)), fontsize=7)
    axl.set_ylim(-0.7, len(lanes) - 0.3)
    axl.set_xlabel(xlabel)
    axl.grid(True, axis="x", alpha=0.3)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    if offloaded - recomputed:
        handles.append(Patch(color="C0", alpha=0.85, label="in fast memory (offloaded datum)"))
    if recomputed - offloaded:
        handles.append(Patch(color="C1", alpha=0.85, label="in fast memory (recomputed datum)"))
    if recomputed & offloaded:
        handles.append(Patch(color="C2", alpha=0.85, label="in fast memory (offloaded and recomputed)"))
    if offloaded:
        handles += [Patch(color="0.8", label="copy in slow memory"),
                    Line2D([], [], marker="v", color="black", linestyle="none", markersize=4, label="offload"),
                    Line2D([], [], marker="^", color="black", linestyle="none", markersize=4, label="reload")]
    if recomputed:
        handles.append(Line2D([], [], marker="o", color="black", markerfacecolor="white", linestyle="none",
                              markersize=4, label="recompute"))
    axl.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.55 / max(1.0, h_lanes)),
               ncol=min(4, len(handles)), fontsize=7, frameon=False)
    if hidden:
        axl.set_title(f"{len(lanes)} largest of {len(lanes) + hidden} offloaded/recomputed data", fontsize=8)
    return save_figure(fig, paths)


def plot_curve(curve: Any, paths: str | Sequence[str], *, title: str | None = None) -> list[str]:
    """Overhead against memory for one :class:`~memopt.bench.curve.Curve`: the best plan's overhead at each
    budget (a staircase: it never rises with the budget; filled markers proven optimal), the proven
    lower bound on it (dashed), the budgets proven infeasible (crosses) and the lower bound on the peak."""
    plt = pyplot()
    base = curve.base_peak or 1
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    pts = sorted(curve.points, key=lambda p: p.budget)
    got = [p for p in pts if p.overhead is not None]
    if got:
        ax.step([p.budget / base for p in got], [100 * p.overhead for p in got], where="post", color="C0",
                linewidth=1.4, label="best plan found")
        for p in got:
            ax.plot([p.budget / base], [100 * p.overhead], marker="o", color="C0", linestyle="none", markersize=5,
                    markerfacecolor="C0" if p.status == "optimal" else "white")
    bnd = [p for p in pts if p.overhead_bound is not None]
    if bnd:
        ax.step([p.budget / base for p in bnd], [100 * p.overhead_bound for p in bnd], where="post", color="C3",
                linestyle="--", linewidth=1.2, label="proven lower bound")
    bad = [p for p in pts if p.status == "infeasible"]
    if bad:
        ax.plot([p.budget / base for p in bad], [0] * len(bad), marker="x", color="C3", linestyle="none",
                label="infeasible (proven)")
    ax.axvline(curve.lower_bound / base, color="0.4", linewidth=0.8, linestyle=":")
    ax.text(curve.lower_bound / base, 1.0, " no plan below", transform=ax.get_xaxis_transform(), fontsize=7,
            va="top", ha="left", color="0.3")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"budget / best schedule's peak ({base})", fontsize=9)
    ax.set_ylabel("overhead (%)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title or f"{curve.instance}: memory against time ({curve.techniques()})", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, paths)


__all__ = ["MARKERS", "event_positions", "method_styles", "plan_lanes", "plot_curve", "plot_plan", "pyplot",
           "rc_context", "save_figure"]
