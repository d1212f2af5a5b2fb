"""What ``memopt run`` runs: a shipped architecture, or a factory in a Python file.

A *target* is

- ``models.NAME``: an architecture of the zoo (``models/__init__.py``:
  ``ZOO``, loaded by :func:`memopt.commands.build.load_zoo`): its module
  (default initialisation, seeded), a batch of ``batch`` random examples of
  the zoo's shapes, and its loss. Floating-point tensors are standard
  normal; integer ones (labels, tokens) uniform in ``[0, K)`` with ``K`` the
  smallest non-batch dimension of the model's output (the classes, or the
  sequence length of a language model: valid labels and tokens either way);
- ``path/to/file.py:factory``: ``factory(batch)`` (``factory()`` when no
  batch is given) returns ``(module, example_inputs, targets, loss_fn)``.

:func:`load_target` returns a :class:`Target`; every mistake is a
:class:`~memopt.core.errors.MemoptError` (one line, exit 2).

Complexity: building the module and one forward pass on the meta device.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memopt.core.errors import MemoptError

ZOO_PREFIX = "models."


@dataclass
class Target:
    """A module with a batch and its loss, ready for :func:`memopt.runtime.plan_step`."""

    name: str
    module: Any
    inputs: tuple
    targets: tuple
    loss: Callable[..., Any] | None
    batch: int | None


def load_target(text: str, batch: int | None = None, *, seed: int = 0, models_dir: str | None = None) -> Target:
    """The target ``text`` names (see the module docstring), at ``batch``."""
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise MemoptError(f"--batch must be an integer >= 1, got {batch!r}")
    if text.startswith(ZOO_PREFIX) and ":" not in text:
        return _zoo_target(text[len(ZOO_PREFIX):], batch, seed, models_dir)
    if ":" in text:
        path, _, factory = text.rpartition(":")
        return _file_target(path, factory, batch, seed)
    raise MemoptError(f"target {text!r}: expected models.NAME (a shipped architecture) or path/to/file.py:factory")


def _zoo_target(name: str, batch: int | None, seed: int, models_dir: str | None) -> Target:
    import torch

    from memopt.commands.build import load_zoo

    zoo = load_zoo(models_dir).ZOO
    if name not in zoo:
        raise MemoptError(f"unknown architecture models.{name}; known: {', '.join('models.' + k for k in zoo)}")
    spec = zoo[name]
    b = batch if batch is not None else min(spec.batches)
    torch.manual_seed(seed)
    module = spec.build()
    shapes_in, shapes_tg = tuple(spec.inputs(b)), tuple(spec.targets(b))
    k = _label_bound(module, shapes_in)
    g = torch.Generator().manual_seed(seed)
    return Target(f"models.{name}", module, _real(shapes_in, k, g), _real(shapes_tg, k, g), spec.loss, b)


def _label_bound(module: Any, meta_inputs: tuple) -> int:
    """The smallest non-batch dimension of the output (on the meta device): a bound for labels and tokens."""
    import torch

    from memopt.importers.pytorch import meta_copy

    with torch.no_grad():
        out = meta_copy(module).eval()(*meta_inputs)
    outs = [o for o in (out if isinstance(out, (list, tuple)) else [out]) if isinstance(o, torch.Tensor)]
    dims = [d for o in outs for d in o.shape[1:] if d >= 2]
    return min(dims) if dims else 2


def _real(shapes: tuple, k: int, g: Any) -> tuple:
    import torch

    out = []
    for x in shapes:
        if x.dtype.is_floating_point:
            out.append(torch.randn(x.shape, generator=g, dtype=x.dtype))
        elif x.dtype == torch.bool:
            out.append(torch.rand(x.shape, generator=g) < 0.5)
        else:
            out.append(torch.randint(0, k, x.shape, generator=g, dtype=x.dtype))
    return tuple(out)


def _file_target(path: str, factory: str, batch: int | None, seed: int) -> Target:
    import torch

    if not path or not factory:
        raise MemoptError(f"target {path}:{factory}: expected path/to/file.py:factory")
    if not os.path.isfile(path):
        raise MemoptError(f"{path}: no such file")
    try:
        mod = _import_file(path)
    except MemoptError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's file: its error, in one line
        raise MemoptError(f"{path}: importing it failed ({type(e).__name__}: {e})") from None
    fn = getattr(mod, factory, None)
    if not callable(fn):
        raise MemoptError(f"{path}: no function {factory!r}")
    torch.manual_seed(seed)
    try:
        if batch is not None:
            got = fn(batch)
        elif _needs_argument(fn):
            raise MemoptError(f"{path}:{factory} takes the batch size: give --batch N")
        else:
            got = fn()
    except MemoptError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's factory: its error, in one line
        raise MemoptError(f"{path}:{factory}: calling it failed ({type(e).__name__}: {e})") from None
    if not (isinstance(got, (tuple, list)) and len(got) == 4 and isinstance(got[0], torch.nn.Module)):
        raise MemoptError(f"{path}:{factory} must return (module, example_inputs, targets, loss_fn), "
                          f"got {type(got).__name__}")
    module, inputs, targets, loss = got
    if loss is not None and not callable(loss):
        raise MemoptError(f"{path}:{factory}: loss_fn must be callable (or None), got {type(loss).__name__}")
    return Target(f"{path}:{factory}", module, _as_tuple(inputs), _as_tuple(targets), loss, batch)


def _import_file(path: str) -> Any:
    """The module of ``path``; inside a package (a folder with ``__init__.py``) as its submodule,
    so that relative imports work (``models/tiny.py`` imports ``.gpt2``)."""
    import sys

    stem = os.path.splitext(os.path.basename(path))[0]
    folder = os.path.dirname(os.path.abspath(path))
    name = f"memopt_target_{stem}"
    if os.path.isfile(os.path.join(folder, "__init__.py")) and stem != "__init__":
        pkg = "memopt_target_pkg_" + "".join(c if c.isalnum() else "_" for c in folder)
        if pkg not in sys.modules:
            spec = importlib.util.spec_from_file_location(pkg, os.path.join(folder, "__init__.py"),
                                                          submodule_search_locations=[folder])
            if spec is None or spec.loader is None:
                raise MemoptError(f"{folder}: cannot import this package")
            sys.modules[pkg] = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(sys.modules[pkg])
            except BaseException:
                del sys.modules[pkg]
                raise
        name = f"{pkg}.{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise MemoptError(f"{path}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _needs_argument(fn: Callable[..., Any]) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return any(p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in sig.parameters.values())


def _as_tuple(x: Any) -> tuple:
    if x is None:
        return ()
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


__all__ = ["ZOO_PREFIX", "Target", "load_target"]
