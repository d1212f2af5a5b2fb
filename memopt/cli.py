"""The ``memopt`` command.

Each subcommand lives in its own module under :mod:`memopt.commands` and
defines ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. A new command is one new module.

User mistakes (:class:`~memopt.errors.MemoptError`) are printed as one
``memopt: error: ...`` message with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from .errors import MemoptError

# the order in which commands are listed by --help
_ORDER = ["info", "solve", "evaluate", "convert", "generate"]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__, commands

    parser = argparse.ArgumentParser(
        prog="memopt",
        description="Run a task graph inside a memory budget: scheduling, offloading, recomputation.",
    )
    parser.add_argument("--version", action="version", version=f"memopt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))
    for name in names:
        importlib.import_module(f"{commands.__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MemoptError as e:
        print(f"memopt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memopt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `memopt info x | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
