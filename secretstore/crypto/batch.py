"""Many equations "Σ k·P = O" checked as one: random weights, coefficients merged per point.

Each equation a verifier would check on its own is added with a fresh random weight; terms on
the same point (a shared base, or a point two equations of one proof use) merge into one
coefficient, so the whole check costs one multiplication per distinct point. If any equation
is false the sum is a random point, and so not the identity, except with probability 1/n,
since the weights are drawn after the equations are fixed.
"""

from __future__ import annotations

from collections.abc import Iterable

from secretstore.crypto.curve import N, Point, Scalar, point_sum


class PointSum:
    """A sum of point multiples being collected."""

    __slots__ = ("_terms",)

    def __init__(self) -> None:
        self._terms: dict[Point, int] = {}

    def add(self, coefficient: int, point: Point) -> None:
        if point.is_identity():
            return
        self._terms[point] = (self._terms.get(point, 0) + coefficient) % N

    def add_all(self, terms: Iterable[tuple[int, Point]]) -> None:
        for coefficient, point in terms:
            self.add(coefficient, point)

    def __len__(self) -> int:
        return len(self._terms)

    def value(self) -> Point:
        return point_sum(point * Scalar(k) for point, k in self._terms.items() if k)

    def is_identity(self) -> bool:
        return self.value().is_identity()
