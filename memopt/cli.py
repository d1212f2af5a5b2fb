"""The ``memopt`` command.

Each subcommand lives in its own module under :mod:`memopt.commands` and
defines ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. A new command is one new module.

User mistakes (:class:`~memopt.core.errors.MemoptError`, bad arguments)
are printed as one ``memopt: error: ...`` line with exit status 2, never a
traceback; an unexpected exception is a bug of memopt: one line saying so
(the traceback with ``MEMOPT_DEBUG=1``) and exit status 4.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback

from memopt.commands._common import Parser
from memopt.core.errors import MemoptError
from memopt.core.status import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USAGE

# the order in which commands are listed by --help
_ORDER = ["info", "solve", "evaluate", "convert", "generate"]


def build_parser() -> argparse.ArgumentParser:
    from memopt import __version__, commands

    parser = Parser(
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a usage error (one line, already printed) returns its status; --help exits
        if e.code in (0, None):
            raise
        return int(e.code)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except MemoptError as e:
        print(f"memopt: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("memopt: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `memopt info x | head`
        return 0
    except Exception as e:  # noqa: BLE001 - anything else is a bug of memopt: say so in one line
        if os.environ.get("MEMOPT_DEBUG"):
            traceback.print_exc()
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
        print(f"memopt: internal error, a bug in memopt: {type(e).__name__}: {e}{where}; "
              "rerun with MEMOPT_DEBUG=1 for the traceback", file=sys.stderr)
        return EXIT_BUG


def entry() -> None:
    """The ``memopt`` command (and ``python -m memopt``): :func:`main`, then exit with its status."""
    status = main()
    if status == EXIT_INTERRUPTED:
        # The answer is written and the status says "interrupted". CPython exits by SIGINT instead when a
        # KeyboardInterrupt, even one caught long before, passed through certain frames (its
        # _Py_UnhandledKeyboardInterrupt flag; seen with `memopt bench`): exit with the status as given.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    entry()
