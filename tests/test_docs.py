"""The documentation runs as written: every ``memopt`` line of the README's and docs/' ```bash blocks.

:func:`test_every_documented_command_runs` copies the repository to a
temporary folder and runs, in document order, each ``memopt ...`` line of
the ```bash blocks of README.md, docs/*.md and instances/examples/README.md
(each distinct line once), in this process (``memopt.cli.main``: the console
script without the interpreter's start-up). Then no file of the copy may have
changed (examples never rewrite shipped files; regenerating a shipped file is
allowed only when it comes out identical) and every new file must be ignored
by git (.gitignore lists what the examples write).

- ``memopt generate`` makes at most :data:`N_CAP` tasks; solves and
  benchmarks run with a time limit of at most :data:`CAP` seconds
  (the README's 30-60 s examples would take minutes): a shortened solve may
  end with no plan (exit 1; a model that cannot be built in the time left
  answers at once).
- Exit status 0, or 3 where the line's comment says ``infeasible``.
- Lines needing an optional package (``.onnx``: onnx; ``plot``/``report``:
  matplotlib; ``run``/``build``: torch) are skipped without it; :data:`SKIP` lists the lines never run,
  with the reason. ``pip``, ``python``, ``dask`` lines are not run.

Lines that must fail have no place in a ```bash block: show them as a
```text transcript.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import time

import pytest

from memopt.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))),
        "instances/examples/README.md"]
CAP = 1.0  # seconds: the longest time limit a documented solve or bench gets here
N_CAP = 5000  # tasks: the largest graph a documented `memopt generate` makes here
SKIP = {
    "memopt build": "traces the seven networks of models/ (about 95 s on 2 cores) and rewrites instances/nn/ "
                    "identically; tests/test_importers_pytorch.py runs memopt build on one model",
    "memopt bench graphs/*.yaml": "needs a running Dask cluster (tcp://HOST:8786 is a placeholder); "
                                  "tests/test_bench.py runs the Dask executor on a LocalCluster",
}
NOT_RUN = ("pip install", "python -m pytest", "python benchmarks/", "python instances/examples/", "dask ")
SHELL = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "&"}


def bash_lines(doc: str) -> list[tuple[int, str]]:
    """``(line number, command)`` of the ```bash blocks of ``doc``, continuation lines joined."""
    out: list[tuple[int, str]] = []
    inside, pending, start = False, "", 0
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        for k, raw in enumerate(f, 1):
            line = raw.strip()
            if line.startswith("```"):
                inside = line[3:].strip() == "bash" if not inside else False
                continue
            if not inside:
                continue
            if not pending:
                start = k
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            cmd = (pending + line).strip()
            pending = ""
            if cmd.startswith("pip install") and " && memopt " in cmd:
                # the quick start installs and solves in one command: the solve is run, the install is not
                cmd = cmd[cmd.index(" && memopt ") + 4:]
            if cmd and not cmd.startswith("#"):
                out.append((start, cmd))
    return out


def documented() -> list[tuple[str, int, str]]:
    return [(doc, k, cmd) for doc in DOCS if os.path.exists(os.path.join(ROOT, doc)) for k, cmd in bash_lines(doc)]


def split(cmd: str) -> tuple[list[str], str]:
    """The words of ``cmd`` and its trailing comment."""
    comment = cmd.split(" #", 1)[1] if " #" in cmd else ""
    return shlex.split(cmd, comments=True), comment


def capped(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` with a time limit of at most CAP for ``solve`` and ``bench`` (and whether it changed).

    ``generate --n N`` makes at most N_CAP tasks (50,000 take 5-10 s; the generators' own tests cover size).
    """
    if len(argv) > 3 and argv[1] == "generate" and "--n" in argv[:-1]:
        i = argv.index("--n") + 1
        return argv[:i] + [str(min(int(argv[i]), N_CAP))] + argv[i + 1:], int(argv[i]) > N_CAP
    if len(argv) < 2 or argv[1] not in ("solve", "bench"):
        return argv, False
    out = list(argv)
    for i, a in enumerate(out):
        if a in ("-t", "--time-limit") and i + 1 < len(out):
            v = out[i + 1]
            if v.lower() in ("0", "none") or float(v) > CAP:
                out[i + 1] = f"{CAP:g}"
                return out, True
            return out, False
        if a.startswith("--time-limit="):
            out[i] = f"--time-limit={CAP:g}"
            return out, True
    return out + ["--time-limit", f"{CAP:g}"], True


def expand(argv: list[str]) -> list[str]:
    """Shell globs, as bash expands them (sorted; a pattern without a match stays as it is)."""
    out = []
    for a in argv:
        hits = sorted(glob.glob(a)) if any(c in a for c in "*?[") else []
        out += hits or [a]
    return out


def missing_package(argv: list[str]) -> str | None:
    need = []
    if any(a.endswith(".onnx") for a in argv):
        need.append("onnx")
    if argv[1] in ("plot", "report"):
        need.append("matplotlib")
    if argv[1] in ("run", "build"):
        need.append("torch")
    return next((p for p in need if importlib.util.find_spec(p) is None), None)


def copy_repository(dest: str) -> None:
    """The files of a fresh clone (tracked, or new and not ignored) copied to ``dest``."""
    try:
        names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                               capture_output=True, check=True, timeout=30).stdout.decode().split("\0")
    except (OSError, subprocess.SubprocessError):
        shutil.copytree(ROOT, dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".hypothesis", ".pytest_cache"))
        return
    for name in filter(None, names):
        src = os.path.join(ROOT, name)
        if os.path.isfile(src):
            os.makedirs(os.path.join(dest, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, name))


def snapshot(root: str) -> dict[str, str]:
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha1(fh.read()).hexdigest()
    return out


def not_ignored(paths: list[str]) -> list[str] | None:
    """Which of ``paths`` the repository's .gitignore does not ignore (``None``: git unavailable)."""
    if not paths or not os.path.isdir(os.path.join(ROOT, ".git")):
        return [] if paths else None
    try:
        r = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT, input="\n".join(paths),
                           capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    ignored = set(r.stdout.split("\n"))
    return [p for p in paths if p not in ignored]


def test_documented_commands_are_plain_and_known():
    lines = documented()
    assert sum(cmd.startswith("memopt ") for _, _, cmd in lines) >= 30
    for doc, k, cmd in lines:
        if cmd.startswith(NOT_RUN):
            continue
        assert cmd.startswith("memopt "), f"{doc}:{k}: not a memopt command, and not in NOT_RUN: {cmd}"
        words, _ = split(cmd)
        assert not SHELL & set(words), f"{doc}:{k}: keep documented commands plain (one memopt call): {cmd}"
    for key in SKIP:
        assert any(cmd.startswith(key) for _, _, cmd in lines), f"SKIP names a line no doc has any more: {key}"


def test_every_documented_command_runs(tmp_path, monkeypatch, capsys):
    work = str(tmp_path / "clone")
    copy_repository(work)
    before = snapshot(work)
    monkeypatch.chdir(work)
    failures, ran, skipped, seen = [], [], [], set()
    for doc, k, cmd in documented():
        if cmd.startswith(NOT_RUN):
            continue
        words, comment = split(cmd)
        key = " ".join(words)
        if key in seen:
            continue
        seen.add(key)
        reason = next((why for head, why in SKIP.items() if cmd.startswith(head)), None) or (
            f"needs {missing_package(words)}" if missing_package(words) else None)
        if reason:
            skipped.append(f"{doc}:{k}: {cmd} ({reason})")
            continue
        argv, shortened = capped(expand(words))
        t0 = time.perf_counter()
        try:
            rc = main(argv[1:])
        except SystemExit as e:  # --help
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        secs = time.perf_counter() - t0
        out = capsys.readouterr()
        ran.append((secs, f"{doc}:{k}"))
        ok = {0} | ({3} if "infeasible" in comment else set())
        if shortened and argv[1] == "solve":
            ok.add(1)  # no plan in the shortened time (a model may not even start in it)
        if rc not in ok:
            tail = (out.err.strip() or out.out.strip()).splitlines()[-3:]
            failures.append(f"{doc}:{k}: exit {rc} (expected {sorted(ok)}): {cmd}\n    " + "\n    ".join(tail))
    after = snapshot(work)
    changed = sorted(p for p in before if after.get(p) != before[p])
    new = sorted(set(after) - set(before))
    loose = not_ignored(new) or []
    slowest = ", ".join(f"{w} {s:.1f}s" for s, w in sorted(ran, reverse=True)[:5])
    print(f"{len(ran)} commands run, {len(skipped)} skipped; slowest: {slowest}")
    for s in skipped:
        print("skipped", s)
    assert not failures, "\n".join(failures)
    assert not changed, f"documented commands changed shipped files: {changed}"
    assert not loose, f"documented commands wrote files that git does not ignore (add them to .gitignore): {loose}"


# ------------------------------------------------------------ the docs stay inside the repository
LINK = re.compile(r"\]\(([^)\s]+)\)")


def read(doc: str) -> str:
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("doc", DOCS)
def test_docs_point_inside_the_repository(doc):
    text = read(doc)
    assert "../shared" not in text and "SPEC.md" not in text and "SPEC §" not in text, doc
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = os.path.normpath(os.path.join(ROOT, os.path.dirname(doc), target.split("#")[0]))
        assert os.path.exists(path), f"{doc}: link to a missing file: {target}"


def test_the_spec_states_what_memopt_does():
    from memopt.core.interrupt import DEFAULT_MEMORY_FRACTION
    from memopt.core.status import (
        EXIT_BUG,
        EXIT_INFEASIBLE,
        EXIT_INTERRUPTED,
        EXIT_UNKNOWN,
        EXIT_USAGE,
        Status,
    )
    from memopt.pipeline import DEFAULT_TIME_LIMIT

    spec = read("docs/spec.md")
    for s in Status.values():
        assert f"| `{s}` |" in spec, s
    for code in (EXIT_UNKNOWN, EXIT_USAGE, EXIT_INFEASIBLE, EXIT_BUG, EXIT_INTERRUPTED):
        assert f"\n| {code} |" in spec, code
    assert f"{DEFAULT_TIME_LIMIT:g} s by default" in spec
    assert f"{100 * DEFAULT_MEMORY_FRACTION:g} % of the machine's memory" in spec
    for field in ("statistics", "stats", "stages", "stop_reason", "first_plan_seconds"):
        assert f"`{field}`" in spec, field


# ------------------------------------------------------------ report and plot never destroy or draw nothing
def _bench(tmp_path) -> str:
    csv = str(tmp_path / "r.csv")
    tiny = os.path.join(ROOT, "instances", "tiny.yaml")
    assert main(["bench", tiny, "--methods", "greedy", "--executor", "serial", "--no-progress", "--out", csv]) == 0
    return csv


def test_report_rewrites_its_own_report_but_not_one_it_did_not_write(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from memopt.bench.report import REPORT_MARK

    csv = _bench(tmp_path)
    report = tmp_path / "r" / "report.md"
    assert main(["report", csv, "--format", "svg"]) == 0
    assert report.read_text().splitlines()[0] == REPORT_MARK
    assert main(["report", csv, "--format", "svg", "--title", "again"]) == 0  # its own: rewritten
    assert "# Results: again" in report.read_text()
    committed = "# Results: a committed report\n"
    report.write_text(committed)
    capsys.readouterr()
    assert main(["report", csv, "--format", "svg"]) == 2
    err = capsys.readouterr().err
    assert "was not written by memopt report" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert report.read_text() == committed
    other = tmp_path / "elsewhere"
    assert main(["report", csv, "--format", "svg", "-o", str(other)]) == 0
    assert (other / "report.md").exists() and report.read_text() == committed
    assert main(["report", csv, "--format", "svg", "--force"]) == 0
    assert report.read_text().startswith(REPORT_MARK)


@pytest.mark.parametrize("plan, says", [
    ("stages: []\n", "no stages"),
    ("[]\n", "no stages"),
    ("stages:\n- [{compute: c}]\n", "input-not-resident"),
    ("stages:\n- [{compute: a}]\n- [{compute: b}]\n", "task-never-ran"),
    ("instance: tiny\nobjective: time\nstatus: infeasible\nmethod: auto\n", "without a plan"),
])
def test_plot_of_an_empty_or_broken_plan_is_an_input_error(tmp_path, capsys, plan, says):
    pytest.importorskip("matplotlib")
    path = tmp_path / "plan.yaml"
    path.write_text(plan)
    fig = tmp_path / "plan.png"
    assert main(["plot", os.path.join(ROOT, "instances", "tiny.yaml"), str(path), "-o", str(fig)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and err.startswith("memopt: error:") and len(err.splitlines()) == 1
    assert not fig.exists()


def test_plot_draws_a_plan_over_its_budget_with_a_note(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    tiny = os.path.join(ROOT, "instances", "tiny.yaml")
    plan = os.path.join(ROOT, "docs", "img", "tiny-offload.plan.yaml")
    fig = tmp_path / "over.svg"
    assert main(["plot", tiny, plan, "--budget", "15", "-o", str(fig)]) == 0
    assert "exceeds the budget 15" in capsys.readouterr().err
    assert "INVALID" in fig.read_text()


def test_the_python_blocks_of_the_readme_run(tmp_path, monkeypatch):
    """The README's ```python blocks that start with ``import memopt`` run as written, from a folder that has the
    shipped instances (the others are sketches around the user's own model)."""
    blocks, inside = [], None
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        for line in f:
            if inside is None and line.strip() == "```python":
                inside = []
            elif inside is not None and line.strip() == "```":
                if inside and inside[0].strip() == "import memopt":
                    blocks.append("".join(inside))
                inside = None
            elif inside is not None:
                inside.append(line)
    assert blocks, "the README shows the Python API"
    os.symlink(os.path.join(ROOT, "instances"), tmp_path / "instances")
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
