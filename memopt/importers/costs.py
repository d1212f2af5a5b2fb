"""The roofline cost model of the neural-network importers: an op's time from its FLOPs and bytes.

``time = ceil(max(flops / F, bytes / B))`` nanoseconds, exact (integers, or
fractions when a throughput is not whole): an op is bound either by its
arithmetic or by the memory traffic it causes. Williams, Waterman &
Patterson, "Roofline: an insightful visual performance model for multicore
architectures", CACM 52(4), 2009. Measured costs replace it in
:mod:`memopt.runtime.profile` (``cost="profile"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from memopt.core.errors import MemoptError

#: Default throughput of the cost model: a mid-range accelerator in FP32
#: (10 TFLOP/s; 500 GB/s of memory bandwidth).
DEFAULT_FLOPS_PER_SECOND = 10e12
DEFAULT_BYTES_PER_SECOND = 500e9


@dataclass(frozen=True)
class CostModel:
    """The roofline time of an op, in integer nanoseconds.

    ``time = ceil(max(flops / flops_per_second, bytes / bytes_per_second) · 1e9)``:
    an op is bound either by its arithmetic (convolutions, matrix products)
    or by the bytes it reads and writes (element-wise and data-movement ops)
    — the roofline model of Williams, Waterman & Patterson (CACM 2009).
    """

    flops_per_second: float = DEFAULT_FLOPS_PER_SECOND
    bytes_per_second: float = DEFAULT_BYTES_PER_SECOND

    def __post_init__(self) -> None:
        for name in ("flops_per_second", "bytes_per_second"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0) or math.isinf(v):
                raise MemoptError(f"{name.replace('_', '-')} must be a positive number, got {v!r}")

    def time_ns(self, flops: int | float, nbytes: int | float) -> int:
        """Nanoseconds of an op doing ``flops`` and moving ``nbytes`` (exact ceiling)."""
        giga = 10 ** 9
        f, b = self.flops_per_second, self.bytes_per_second
        if (type(flops) is int and type(nbytes) is int and float(f).is_integer() and float(b).is_integer()):
            # integers throughout (the usual case): ceil(max(x, y)) = max(ceil(x), ceil(y))
            return max(-(-flops * giga // int(f)), -(-nbytes * giga // int(b)))
        t = max(Fraction(flops) * giga / Fraction(self.flops_per_second),
                Fraction(nbytes) * giga / Fraction(self.bytes_per_second))
        return math.ceil(t)


def make_cost(flops_per_second: float | None = None, bytes_per_second: float | None = None) -> CostModel:
    """The cost model with the given throughputs (``None``: the defaults)."""
    return CostModel(
        flops_per_second=DEFAULT_FLOPS_PER_SECOND if flops_per_second is None else flops_per_second,
        bytes_per_second=DEFAULT_BYTES_PER_SECOND if bytes_per_second is None else bytes_per_second)


__all__ = ["DEFAULT_BYTES_PER_SECOND", "DEFAULT_FLOPS_PER_SECOND", "CostModel", "make_cost"]
