"""Slow memory and the channel to it: offload and reload as SPEC §2 times them.

A stage's transfers run *beside* its computes and are done when the stage
ends. :class:`HostStore` does exactly that:

- **CPU** (no accelerator): slow memory is a separate host store — buffers
  allocated by a transfer thread, which PyTorch's dispatch modes (thread
  local) do not see, so the independent measure of fast memory
  (:mod:`memopt.runtime.measure`) does not count them. One worker thread is
  the one channel; ``copy_`` releases the GIL, so copies overlap the
  stage's computes as on a real device. A copy smaller than
  :data:`INLINE_BYTES` is made at once on the calling thread (handing it to
  the worker would cost more than the copy), its host buffer allocated with
  the dispatch modes off — slow memory all the same; a dense one
  (contiguous, filling its storage) as one ``clone`` each way, the fewest
  dispatches: the runtime's cost per transfer is not in the model. A
  larger datum's host buffer is kept for the next step (``spare``, owned
  by the planned step) and filled again rather than allocated anew.
- **CUDA**: slow memory is pinned host memory; copies run on a side stream,
  ordered after the work that produced the data, and the main stream waits
  for them at the end of the stage (``record_stream`` keeps an offloaded
  block from being reused while it is copied).

A reload takes its fast memory at the start of the stage (the tensor is
allocated on the main thread/stream, where it is measured) and the datum is
usable from the next stage on; an offload copies the storage's bytes, so the
datum comes back with the same shape, strides and offset.

Complexity: O(bytes moved).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

#: on CPU, copies below this many bytes are made on the calling thread, not handed to the transfer thread
INLINE_BYTES = 256 << 10


class HostStore:
    """The host copies of offloaded data and the transfers in flight (one stage at a time)."""

    def __init__(self, device: Any, spare: dict[str, Any] | None = None):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.copies: dict[str, tuple[Any, Any]] = {}   # datum -> (host uint8 buffer, template tensor meta)
        # host buffers of an earlier step, per datum, filled again instead of allocated: a fresh buffer costs
        # its page faults on every step (a 25 MB offload: 4.4 ms as a clone, 2.7 ms into a reused buffer)
        self.spare: dict[str, Any] = {} if spare is None else spare
        self.given: set[str] = set()   # data whose host buffer was handed out (host_tensor): never reused
        self.pending: list[Any] = []
        self.pool: ThreadPoolExecutor | None = None
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None

    # -------------------------------------------------------------- transfers
    def offload(self, d: str, x: Any) -> None:
        """Start copying the storage of ``x`` (datum ``d``) to slow memory."""
        torch = self.torch
        if not self.cuda and _dense(x) and x.untyped_storage().nbytes() < INLINE_BYTES:
            # the common small case, in as few dispatches as possible: they are the runtime's own cost,
            # which the model's transfer (beside the computes) does not have
            if torch._C._len_torch_dispatch_stack():
                from torch.utils._python_dispatch import _disable_current_modes

                with _disable_current_modes():   # slow memory: not the fast memory the modes measure
                    self.copies[d] = (x.clone(), DENSE)
            else:
                self.copies[d] = (x.clone(), DENSE)
            return
        shape = (x.dtype, tuple(x.shape), tuple(x.stride()), x.storage_offset())
        src = torch.empty(0, dtype=torch.uint8, device=x.device).set_(x.untyped_storage())
        if self.cuda:
            host = torch.empty(src.numel(), dtype=torch.uint8, pin_memory=True)
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                host.copy_(src, non_blocking=True)
            x.record_stream(self.stream)
            self.copies[d] = (host, shape)
            return
        if src.numel() < INLINE_BYTES:
            from torch.utils._python_dispatch import _disable_current_modes

            with _disable_current_modes():   # slow memory: not the fast memory the modes measure
                self.copies[d] = (_host_copy(src), shape)
            return
        buf = self.spare.pop(d, None)
        if buf is not None and buf.numel() == src.numel():
            fut = self._worker().submit(_take_and_copy_into, [buf, src])
        else:
            fut = self._worker().submit(_take_and_clone, [src])
        del src, buf
        self.pending.append(fut)
        self.copies[d] = (fut, shape)

    def reload(self, d: str) -> Any:
        """Allocate ``d``'s tensor in fast memory (now) and start filling it from its host copy."""
        torch = self.torch
        host, meta = self.copies[d]
        if meta is DENSE:
            return host.clone()
        dtype, size, stride, offset = meta
        if isinstance(host, Future):
            host = host.result()  # offloaded in an earlier stage: done already
            self.copies[d] = (host, (dtype, size, stride, offset))
        buf = torch.empty(host.numel(), dtype=torch.uint8, device=self.device)
        x = torch.empty(0, dtype=dtype, device=self.device).set_(buf.untyped_storage(), offset, size, stride)
        if self.cuda:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                buf.copy_(host, non_blocking=True)
            buf.record_stream(self.stream)
        elif host.numel() < INLINE_BYTES:
            buf.copy_(host)
        else:
            self.pending.append(self._worker().submit(_take_and_copy, [buf, host]))
            del buf
        return x

    def host_tensor(self, d: str) -> Any:
        """The host copy of ``d`` as a tensor of its shape (for a result left in slow memory)."""
        torch = self.torch
        host, meta = self.copies[d]
        self.given.add(d)
        if meta is DENSE:
            return host
        dtype, size, stride, offset = meta
        if isinstance(host, Future):
            host = host.result()
        return torch.empty(0, dtype=dtype).set_(host.untyped_storage(), offset, size, stride)

    def wait(self) -> None:
        """The end of a stage: every transfer started in it is done."""
        if self.cuda:
            self.torch.cuda.current_stream(self.device).wait_stream(self.stream)
            return
        for f in self.pending:
            f.result()
        self.pending.clear()

    def clear(self) -> None:
        """The end of a step: the host buffers not handed out become the spares of the next one (CPU)."""
        self.wait()
        if not self.cuda:
            for d, (host, meta) in self.copies.items():
                if meta is not DENSE and d not in self.given and _numel(host) >= INLINE_BYTES:
                    self.spare[d] = host.result() if isinstance(host, Future) else host
        self.copies.clear()
        self.given.clear()

    def close(self) -> None:
        self.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None

    def _worker(self) -> ThreadPoolExecutor:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memopt-transfer")
        return self.pool


#: the layout of a host copy that is a plain clone of a dense tensor (its storage holds exactly its elements)
DENSE = None


def _dense(x: Any) -> bool:
    """``x`` is contiguous and fills its whole storage: a clone has the same bytes, shape and strides."""
    return x.is_contiguous() and x.storage_offset() == 0 and x.numel() * x.element_size() == \
        x.untyped_storage().nbytes()


# The pool's work item keeps its arguments until the worker thread drops it, which may be after the
# caller saw the result: the tensors go in a list that the job empties, so no reference outlives the copy
# (else a datum freed right after its transfer would live on, and the independent measure would see it).
def _take_and_clone(box: list) -> Any:
    src = box.pop()
    return src.clone()


def _numel(host: Any) -> int:
    return host.result().numel() if isinstance(host, Future) else host.numel()


def _take_and_copy_into(box: list) -> Any:
    src = box.pop()
    buf = box.pop()
    buf.copy_(src)
    return buf


def _take_and_copy(box: list) -> None:
    host = box.pop()
    dst = box.pop()
    dst.copy_(host)


def _host_copy(src: Any) -> Any:
    return src.clone()


__all__ = ["INLINE_BYTES", "HostStore"]
