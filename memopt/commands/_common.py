"""Arguments and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import MemoptError


def parse_kv(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values read as int, float, true/false or text."""
    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise MemoptError(f"option {it!r}: expected key=value")
        k, v = it.split("=", 1)
        out[k.strip().replace("-", "_")] = _value(v.strip())
    return out


def _value(v: str) -> Any:
    low = v.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def add_problem_args(p: argparse.ArgumentParser) -> None:
    """--objective, --budget, --max-makespan, --recompute, --offload."""
    g = p.add_argument_group("problem")
    g.add_argument("--objective", choices=("peak", "time"), default="peak",
                   help="peak: minimise the peak memory; time: minimise the makespan under --budget (default: peak)")
    g.add_argument("--budget", default=None,
                   help="fast-memory budget M: a size (e.g. 1000) or a ratio of the best baseline peak (e.g. 0.8x); "
                        "default: the instance's machine.budget")
    g.add_argument("--max-makespan", type=float, default=None, metavar="T",
                   help="with --objective peak: the makespan may not exceed T")
    g.add_argument("--recompute", action="store_true", help="allow recomputation (rematerialization)")
    g.add_argument("--offload", action="store_true", help="allow offloading to slow memory (needs machine.bandwidth)")


def load(path: str, args: argparse.Namespace | None = None, **extra: Any):
    """Load an instance, passing importer options (``--import-option k=v``, then ``extra``) along."""
    from ..io import load_instance

    opts = parse_kv(getattr(args, "import_option", None)) if args is not None else {}
    opts.update(extra)
    return load_instance(path, **opts)


def add_import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import-option", "-I", action="append", metavar="KEY=VALUE",
                   help="option for the importer of a foreign format (repeatable), e.g. -I batch=8")
