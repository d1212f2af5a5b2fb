"""The plain PyTorch step, and the checks against it: equal loss, equal gradients, wall time.

:func:`plain_step` is what a user runs without memopt: ``loss_fn(module(*inputs),
*targets).backward()``. :func:`compare` runs it on a copy of the module and
the planned step on the module itself, from the same random state, and
compares the loss, every gradient and every buffer with :func:`torch.equal`
(bit for bit). :func:`interleaved_medians` times steps the usual way: warm-up
runs, then the median and the least of several (wall and CPU time), the
steps in turn.

Complexity: one plain and one planned step per comparison.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


def as_list(x: Any) -> list[Any]:
    """A batch given as one tensor, a tuple or a list, as a list."""
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def plain_step(module: Any, inputs: Any, targets: Any, loss_fn: Callable[..., Any] | None) -> Any:
    """One ordinary training step: forward, loss, ``backward()``; returns the loss (detached)."""
    from memopt.importers.pytorch import default_loss

    out = module(*as_list(inputs))
    value = (loss_fn or default_loss)(out, *as_list(targets))
    value.backward()
    return value.detach()


def zero_grads(module: Any) -> None:
    """Gradients set to ``None`` (the next step writes them afresh)."""
    for p in module.parameters():
        p.grad = None


@contextlib.contextmanager
def kept_buffers(module: Any) -> Iterator[None]:
    """Run steps whose buffer updates (running statistics) are undone afterwards."""
    saved = {k: b.detach().clone() for k, b in module.named_buffers()}
    try:
        yield
    finally:
        for k, b in module.named_buffers():
            if k in saved:
                b.copy_(saved[k])


@dataclass
class Comparison:
    """The planned step against the plain one."""

    loss_equal: bool
    gradients_equal: bool
    buffers_equal: bool
    loss: float
    plain_loss: float
    max_grad_diff: float = 0.0
    different: list[str] = field(default_factory=list)   # parameters/buffers whose values differ

    @property
    def equal(self) -> bool:
        return self.loss_equal and self.gradients_equal and self.buffers_equal


def compare(step: Callable[[Any, Any], Any], module: Any, inputs: Any, targets: Any,
            loss_fn: Callable[..., Any] | None, *, seed: int = 0) -> Comparison:
    """Run ``step`` (on ``module``) and the plain step (on a copy made first) from the same state; compare."""
    import torch

    ref = copy.deepcopy(module)
    zero_grads(module)
    zero_grads(ref)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    loss = step(inputs, targets)
    torch.manual_seed(seed)
    plain = plain_step(ref, inputs, targets, loss_fn)
    torch.random.set_rng_state(state)
    different: list[str] = []
    worst = 0.0
    ref_params = dict(ref.named_parameters())
    grads_ok = True
    for k, p in module.named_parameters():
        a, b = p.grad, ref_params[k].grad
        if (a is None) != (b is None):
            grads_ok = False
            different.append(k)
        elif a is not None and not torch.equal(a, b):
            grads_ok = False
            different.append(k)
            if a.shape == b.shape:
                worst = max(worst, float((a.double() - b.double()).abs().max()))
    ref_bufs = dict(ref.named_buffers())
    bufs_ok = True
    for k, b in module.named_buffers():
        if not torch.equal(b, ref_bufs[k]):
            bufs_ok = False
            different.append(k)
    return Comparison(bool(torch.equal(loss, plain)), grads_ok, bufs_ok, float(loss), float(plain), worst, different)


@dataclass
class Timings:
    """Wall and CPU seconds of steps timed in turn: medians, and the best (least) wall time of each."""

    wall: list[float]
    cpu: list[float]
    best: list[float]
    runs: int


def interleaved_medians(fns: Sequence[Callable[[], Any]], runs: int = 5, warmup: int = 1,
                        sync: Callable[[], Any] | None = None, min_seconds: float = 0.0,
                        max_runs: int = 100) -> Timings:
    """Median and least wall times, and median CPU times of the process, of several steps timed in turn.

    Round robin: a drift of the machine hits every step alike. The CPU time
    (``time.process_time``: every thread of the process) is what a loaded
    machine does not inflate, beside the wall time, which it does. The
    least wall time is the estimate ``timeit`` recommends on a shared
    machine (other jobs only ever add time). Short steps get more runs:
    at least ``runs``, and as many as make ``min_seconds`` of each step
    (at most ``max_runs``).
    """
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    k = 0
    while True:
        for i, fn in enumerate(fns):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            if sync is not None:
                sync()
            if k >= warmup:
                wall[i].append(time.perf_counter() - t0)
                cpu[i].append(time.process_time() - c0)
        k += 1
        done = k - warmup
        if done >= runs and (done >= max_runs or all(sum(w) >= min_seconds for w in wall)):
            break
    return Timings([statistics.median(t) if t else 0.0 for t in wall],
                   [statistics.median(t) if t else 0.0 for t in cpu],
                   [min(t) if t else 0.0 for t in wall], max(0, k - warmup))


__all__ = ["Comparison", "as_list", "compare", "Timings", "interleaved_medians", "kept_buffers", "plain_step",
           "zero_grads"]
