"""One protocol for every transform: apply it to a request, solve the result, map the answer back.

A :class:`Transform` is made from a request by its function (``scale(req)``,
``fuse_request(req, mode)``, ``reduce_request(req)``) and holds

- ``original`` and ``request``: the request before and after — a method
  solves ``request`` instead of ``original``;
- :meth:`expand`: a plan of ``request`` as a plan of ``original`` (valid for
  it, and no worse: the evaluator confirms it anyway);
- :meth:`unscale`: an objective value or bound of ``request`` in the units
  of ``original``;
- ``exact``: whether the optimum is preserved (then bounds carry over too;
  otherwise only plans do).

Transforms compose with :meth:`Transform.then` (fusion then scaling, say):
the composed one expands and unscales through both, and is exact when
both are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from memopt.core.plan import Plan
from memopt.core.request import Request


class Transform(ABC):
    """A rewrite of a request, with the way back (module docstring)."""

    original: Request
    request: Request
    exact: bool = True

    @abstractmethod
    def expand(self, plan: Plan) -> Plan:
        """A plan of :attr:`request` as a plan of :attr:`original`."""

    def unscale(self, value: int | float) -> int | float:
        """An objective value or bound of :attr:`request` in the units of :attr:`original`."""
        return value

    def then(self, other: Transform) -> Transform:
        """This transform followed by ``other`` (made from this one's :attr:`request`)."""
        if other.original is not self.request:
            raise ValueError("transforms compose only on the request the first one made")
        return Chain(self, other)


class Identity(Transform):
    """No change (a transform that was not worth applying)."""

    def __init__(self, req: Request):
        self.original = self.request = req

    def expand(self, plan: Plan) -> Plan:
        return plan


class Chain(Transform):
    """``first`` then ``second``."""

    def __init__(self, first: Transform, second: Transform):
        self.first, self.second = first, second
        self.original, self.request = first.original, second.request
        self.exact = first.exact and second.exact

    def expand(self, plan: Plan) -> Plan:
        return self.first.expand(self.second.expand(plan))

    def unscale(self, value: int | float) -> int | float:
        return self.first.unscale(self.second.unscale(value))


__all__ = ["Chain", "Identity", "Transform"]
