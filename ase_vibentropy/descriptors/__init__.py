"""Descriptor providers found through the ``ase_vibentropy.descriptors`` entry-point group.

>>> from ase_vibentropy import descriptors
>>> provider = descriptors.get("afs", n_max=20, l_max=10, r_cut=5.0)   # doctest: +SKIP

Third-party packages add a provider by declaring, in their own ``pyproject.toml``::

    [project.entry-points."ase_vibentropy.descriptors"]
    mydesc = "mypackage.module:MyDescriptorProvider"

where the class derives from :class:`~ase_vibentropy.descriptors.base.DescriptorProvider`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from ..errors import UnknownNameError
from .base import DescriptorProvider

ENTRY_POINT_GROUP = "ase_vibentropy.descriptors"

__all__ = ["DescriptorProvider", "available", "get", "ENTRY_POINT_GROUP"]


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Names of every registered descriptor provider (built-in and third-party)."""
    return sorted(_entry_points())


def get(name: str, **params: Any) -> DescriptorProvider:
    """Build the provider registered as ``name`` with ``params``.

    Raises
    ------
    UnknownNameError
        No provider of that name is registered (the message lists the known ones).
    """
    eps = _entry_points()
    if name not in eps:
        raise UnknownNameError(
            f"unknown descriptor {name!r}; available: {', '.join(sorted(eps)) or 'none'} "
            "(is ase-vibentropy installed, e.g. pip install -e .?)"
        )
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, DescriptorProvider)):
        raise UnknownNameError(
            f"entry point {name!r} -> {eps[name].value} is not a DescriptorProvider subclass"
        )
    return cls(**params)
