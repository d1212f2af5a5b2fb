"""Which submodule was running when an op was traced: its *module path* (``blocks.3.attn``).

:func:`module_paths` hooks every submodule of a ``torch.nn.Module`` while a
step is traced: a forward pre-hook pushes the submodule's qualified name, a
forward hook pops it, so :func:`current_path` is the innermost module whose
forward is running — the path PyTorch's ``nn_module_stack`` would give. The
importers write it as the task annotation ``group`` (docs/model.md), which
:mod:`memopt.graph.structure` reads to cut a network into its repeated
blocks. Ops run by autograd (the backward pass) run outside every forward:
they get no path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_STACK: list[str] = []


def current_path() -> str | None:
    """The qualified name of the innermost submodule whose forward is running (``None``: none)."""
    return _STACK[-1] if _STACK else None


@contextmanager
def module_paths(module: Any) -> Iterator[None]:
    """Track :func:`current_path` through ``module``'s submodules while the block runs."""
    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue

        def pre(_mod: Any, _args: Any, name: str = name) -> None:
            _STACK.append(name)

        def post(_mod: Any, _args: Any, _out: Any) -> None:
            if _STACK:
                _STACK.pop()

        handles.append(sub.register_forward_pre_hook(pre))
        handles.append(sub.register_forward_hook(post))
    depth = len(_STACK)
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        del _STACK[depth:]


__all__ = ["current_path", "module_paths"]
