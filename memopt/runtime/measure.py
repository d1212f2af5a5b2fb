"""An independent measure of fast memory: every storage allocated during the step, while it lives.

:class:`StorageTracker` is a :class:`~torch.utils._python_dispatch.TorchDispatchMode`:
it sees the result of every ATen op run on the step's thread, and for each
tensor the *untyped storage* behind it. A storage it has not seen before,
and that existed before the step (parameters, buffers, gradients already
there, the caller's batch) is not, is *allocated during the step*: its bytes
are added, and a ``weakref.finalize`` on the storage subtracts them when the
storage really dies — whatever still refers to it (a view, a cache, a
forgotten local), this measure does not trust the runtime's bookkeeping.

**What counts** (the definition the instance's sizes follow): the bytes
(``UntypedStorage.nbytes()``) of the distinct storages allocated by the
step's ops on the compute device, while alive. Not counted: parameters and
buffers (the importer's instance leaves them out unless ``count_params``,
then they are a constant added by the caller), memory a kernel allocates
internally and frees before returning (no tensor of the graph), and the
slow-memory copies made by the transfer thread (another thread: dispatch
modes are thread-local; on CUDA, any storage not on the device).

The peak is taken after every op, i.e. at every allocation: the largest
live total at any moment. A *window* (:meth:`open_window`) gives the most
held over a span: the executor opens one before each task and reads it
after, which gives the measure at the evaluator's points (the memory at a
compute is the most the task holds while it runs).

On CUDA, :func:`cuda_peak` also reads ``torch.cuda.max_memory_allocated``:
it adds the caching allocator's rounding (blocks of 512 bytes), kernels'
internal workspaces (cuBLAS, cuDNN) and the parameters.

Complexity: O(1) per op result.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any


def _tracker_class():
    from torch.utils._python_dispatch import TorchDispatchMode

    class StorageTracker(TorchDispatchMode):
        """Live bytes of the storages allocated while it is active (see the module docstring)."""

        def __init__(self, existing: Iterable[Any] = (), device_type: str | None = None):
            super().__init__()
            import torch

            self.tensor_type = torch.Tensor
            self.device_type = device_type
            self.known: set[int] = {x.untyped_storage()._cdata for x in existing if isinstance(x, torch.Tensor)}
            self.live: dict[int, int] = {}
            self.current = 0
            self.peak = 0
            self.window = 0          # the most held since open_window()
            self.allocations = 0

        def open_window(self) -> None:
            """Start a new window: :attr:`window` is the most held from now on."""
            self.window = self.current

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, self.tensor_type):
                self._see(out)
            elif isinstance(out, (tuple, list)):
                for x in out:
                    if isinstance(x, self.tensor_type):
                        self._see(x)
            return out

        def _see(self, x: Any) -> None:
            if self.device_type is not None and x.device.type != self.device_type:
                return
            st = x.untyped_storage()
            k = st._cdata
            if k in self.live or k in self.known:
                return
            n = st.nbytes()
            self.live[k] = n
            self.allocations += 1
            self.current += n
            self.peak = max(self.peak, self.current)
            self.window = max(self.window, self.current)
            weakref.finalize(st, self._gone, k)

        def _gone(self, k: int) -> None:
            n = self.live.pop(k, None)
            if n is not None:
                self.current -= n

    return StorageTracker


_CLASS: list[Any] = []


def storage_tracker(existing: Iterable[Any] = (), device_type: str | None = None):
    """A new :class:`StorageTracker` (use it as a context manager around the step)."""
    if not _CLASS:
        _CLASS.append(_tracker_class())
    return _CLASS[0](existing, device_type)


def cuda_peak(device: Any) -> int | None:
    """``torch.cuda.max_memory_allocated(device)``, or ``None`` off CUDA."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return None
    return int(torch.cuda.max_memory_allocated(dev))


__all__ = ["cuda_peak", "storage_tracker"]
