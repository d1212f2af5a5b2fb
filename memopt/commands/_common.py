"""Arguments, value types and helpers shared by several subcommands.

Every mistake on a command line is one line — ``memopt: error: ...`` — and
exit status 2, before anything is loaded or solved (:class:`Parser`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any, NoReturn

from memopt.core.errors import MemoptError
from memopt.core.params import parse_exact
from memopt.core.status import EXIT_USAGE

OUTPUT_SUFFIXES = (".yaml", ".yml", ".json")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        prog = self.prog.replace("memopt ", "", 1) if self.prog.startswith("memopt ") else ""
        where = f"{prog}: " if prog and prog != "memopt" else ""
        print(f"memopt: error: {where}{message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


# ------------------------------------------------------------------ value types
def seconds_or_none(text: str) -> float | None:
    """A time limit: seconds > 0, or ``0``/``none`` for no limit."""
    t = text.strip().lower()
    if t in ("none", "0", "inf", "off"):
        return None
    d = parse_exact(t)
    if d is None or d <= 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, or 0/none for no limit, got {text!r}")
    return float(d)


_SIZE_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
               "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


NO_LIMIT = 0  # what bytes_or_none returns for "none" (argparse keeps None for "not given")


def bytes_or_none(text: str) -> int:
    """A memory size: ``8GiB``, ``512M``, ``1000000`` (bytes), or ``none`` (:data:`NO_LIMIT`)."""
    t = text.strip().lower().replace(" ", "")
    if t in ("none", "off", "0"):
        return NO_LIMIT
    num = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(num):]
    d = parse_exact(num) if num else None
    if d is None or unit not in _SIZE_UNITS or d <= 0:
        raise argparse.ArgumentTypeError(f"expected a size like 8GiB, 512MiB or a number of bytes, got {text!r}")
    return int(d * _SIZE_UNITS[unit])


def positive_int(text: str) -> int:
    d = parse_exact(text)
    if d is None or d != int(d) or d < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(d)


def natural(text: str) -> int:
    d = parse_exact(text)
    if d is None or d != int(d) or d < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(d)


def exact_number(text: str) -> str:
    """A finite number >= 0, kept as text so that it is parsed exactly later."""
    d = parse_exact(text)
    if d is None or d < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return text.strip()


def budget_text(text: str) -> str:
    """A budget: an integer size or a ratio like ``0.8x`` (parsed exactly once the instance is loaded)."""
    t = text.strip()
    body = t[:-1] if t.lower().endswith("x") else t
    d = parse_exact(body)
    if d is None or d < 0 or (t.lower().endswith("x") and d == 0):
        raise argparse.ArgumentTypeError(f"expected a size like 1000 or a ratio like 0.8x, got {text!r}")
    if not t.lower().endswith("x") and d != int(d):
        raise argparse.ArgumentTypeError(f"a budget is an integer size (or a ratio like 0.8x), got {text!r}")
    return t


def check_output(path: str | None, what: str = "output") -> None:
    """Refuse, before any work, an output path that has an unknown suffix or cannot be written."""
    if path is None:
        return
    ext = os.path.splitext(path)[1].lower()
    if ext not in OUTPUT_SUFFIXES:
        raise MemoptError(f"{path}: the {what} file must end in .yaml, .yml or .json")
    if os.path.isdir(path):
        raise MemoptError(f"{path}: is a directory; give a file name for the {what}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise MemoptError(f"{path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise MemoptError(f"{path}: cannot be written (permission denied)")


def make_output_folder(path: str, what: str = "output") -> None:
    """Create the folder of an output file that a command writes at its end (as ``bench --out`` does), now,
    before any work: a path that cannot be made is a one-line error, not a lost run."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise MemoptError(f"{path}: cannot make the folder of the {what} ({e.strerror})") from None
    if os.path.isdir(path):
        raise MemoptError(f"{path}: is a directory; give a file name for the {what}")
    if not os.access(parent, os.W_OK):
        raise MemoptError(f"{path}: cannot be written (permission denied)")


def parse_kv(items: list[str] | None, typed: bool = False) -> dict[str, Any]:
    """``key=value`` pairs (``-O``, ``-I``); values stay text unless ``typed`` (int, float, true/false, text)."""
    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise MemoptError(f"option {it!r}: expected key=value")
        k, v = it.split("=", 1)
        k = k.strip().replace("-", "_")
        if not k:
            raise MemoptError(f"option {it!r}: expected key=value")
        out[k] = _value(v.strip()) if typed else v.strip()
    return out


def _value(v: str) -> Any:
    low = v.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    d = parse_exact(v)
    if d is not None:
        return int(d) if d == int(d) and "." not in v and "e" not in low else float(d)
    return v


def add_problem_args(p: argparse.ArgumentParser) -> None:
    """--objective, --budget, --max-makespan, --recompute, --offload."""
    g = p.add_argument_group("problem")
    g.add_argument("--objective", choices=("peak", "time"), default="peak",
                   help="peak: minimise the peak memory; time: minimise the makespan under --budget (default: peak)")
    g.add_argument("--budget", default=None, type=budget_text,
                   help="fast-memory budget M: an integer size (e.g. 1000) or a ratio of the best baseline peak "
                        "(e.g. 0.8x), parsed exactly; default: the instance's machine.budget")
    g.add_argument("--max-makespan", type=exact_number, default=None, metavar="T",
                   help="with --objective peak: the makespan may not exceed T")
    g.add_argument("--recompute", action="store_true", help="allow recomputation (rematerialization)")
    g.add_argument("--offload", action="store_true", help="allow offloading to slow memory (needs machine.bandwidth)")


def load(path: str, args: argparse.Namespace | None = None, **extra: Any):
    """Load an instance, passing importer options (``--import-option k=v``, then ``extra``) along."""
    from memopt.io import load_instance

    opts = parse_kv(getattr(args, "import_option", None), typed=True) if args is not None else {}
    opts.update(extra)
    return load_instance(path, **opts)


def add_import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import-option", "-I", action="append", metavar="KEY=VALUE",
                   help="option for the importer of a foreign format (repeatable), e.g. -I batch=8")


def finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
