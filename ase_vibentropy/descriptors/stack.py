"""Concatenation of descriptor providers: D_i = [D_i^(1), D_i^(2), ...].

A linear model on the stacked descriptor is a linear model on each part with its own weights,
so S = w · Σ_i D_i still holds (Eq. 13-15). Used for the AFS + Einstein model of bcc Fe
(``descriptors.get("stack", parts=[["afs", {}], ["einstein", {}]])``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import DescriptorError
from .base import DescriptorProvider


def _parse_parts(parts: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(parts, (str, bytes)) or not isinstance(parts, Sequence) or not parts:
        raise DescriptorError(
            "stack needs parts=[[name, params], ...], a non-empty list of descriptor names, each "
            f"with a dict of its parameters (e.g. [['afs', {{}}], ['einstein', {{}}]]); got {parts!r}"
        )
    parsed = []
    for part in parts:
        if isinstance(part, str):
            parsed.append((part, {}))
        elif (
            isinstance(part, Sequence) and len(part) == 2 and isinstance(part[0], str)
            and isinstance(part[1], dict)
        ):
            parsed.append((part[0], dict(part[1])))
        else:
            raise DescriptorError(
                f"stack part {part!r} is neither a descriptor name nor a [name, params] pair"
            )
    if any(name == "stack" for name, _ in parsed):
        raise DescriptorError("a stack cannot contain another stack: list its parts directly")
    return parsed


class StackedDescriptor(DescriptorProvider):
    """Several providers side by side; components in the order of ``parts``.

    Parameters
    ----------
    parts
        ``[[name, params], ...]`` (a bare name means default parameters); each is built with
        :func:`ase_vibentropy.descriptors.get`.

    Raises
    ------
    DescriptorError
        Malformed ``parts``.
    UnknownNameError
        A part names no registered provider.
    """

    name = "stack"

    def __init__(self, parts: Sequence[Any] = (("afs", {}), ("einstein", {}))):
        from . import get

        self.parts = [get(name, **params) for name, params in _parse_parts(parts)]

    @property
    def params(self) -> dict[str, Any]:
        """``parts``: [[name, complete params], ...]."""
        return {"parts": [[part.name, part.params] for part in self.parts]}

    @property
    def dim(self) -> int:
        """Sum of the parts' dimensions."""
        return sum(part.dim for part in self.parts)

    @property
    def is_local(self) -> bool:  # type: ignore[override]
        """True when every part is local."""
        return all(part.is_local for part in self.parts)

    @property
    def whole_structure(self) -> bool:  # type: ignore[override]
        """True when every part evaluates whole structures without chunks."""
        return all(part.whole_structure for part in self.parts)

    @property
    def cutoff(self) -> float:
        """The largest cut-off of the parts, Å."""
        return max(part.cutoff for part in self.parts)

    @property
    def species(self) -> list[str] | None:
        """Elements every part accepts (None: any)."""
        allowed = [set(part.species) for part in self.parts if part.species is not None]
        return sorted(set.intersection(*allowed)) if allowed else None

    @property
    def has_gradient(self) -> bool:
        """True when every part has an analytic gradient."""
        return all(part.has_gradient for part in self.parts)

    @property
    def has_strain_gradient(self) -> bool:
        """True when every part has an analytic strain gradient."""
        return all(part.has_strain_gradient for part in self.parts)

    def strain_gradient(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        """Σ over parts of their strain gradients with their slices of ``w``, shape (3, 3).

        Raises
        ------
        NotImplementedError
            A part has no analytic strain gradient.
        """
        w = self.check_weights(w)
        missing = [part.name for part in self.parts if not part.has_strain_gradient]
        if missing:
            raise NotImplementedError(
                f"the stacked descriptor has no strain gradient: {', '.join(missing)} has none"
            )
        bounds = np.cumsum([0] + [part.dim for part in self.parts])
        return sum(
            part.strain_gradient(atoms, w[start:stop])
            for part, start, stop in zip(self.parts, bounds[:-1], bounds[1:])
        )

    def check_compatible(self, atoms: Atoms) -> None:
        """Every part's own checks (the structure itself is checked once, by
        :meth:`check_atoms`)."""
        for part in self.parts:
            part.check_compatible(atoms)

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """[D^(1) | D^(2) | ...] of the atoms ``centers``, shape (M, dim)."""
        return np.hstack([part._compute_centers(atoms, centers) for part in self.parts])

    def vjp(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        """Σ over parts of their gradients with their slices of ``w``, shape (N, 3).

        Raises
        ------
        NotImplementedError
            A part has no analytic gradient.
        """
        w = self.check_weights(w)
        missing = [part.name for part in self.parts if not part.has_gradient]
        if missing:
            raise NotImplementedError(
                f"the stacked descriptor has no gradient: {', '.join(missing)} has none"
            )
        bounds = np.cumsum([0] + [part.dim for part in self.parts])
        return sum(
            part.vjp(atoms, w[start:stop])
            for part, start, stop in zip(self.parts, bounds[:-1], bounds[1:])
        )
