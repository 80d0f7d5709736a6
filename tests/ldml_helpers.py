"""Test ingredients for the LDML model, model files, evaluation and model CLI tests.

* :class:`RadialPolyDescriptor`: D_i,k = Σ_j (1 - r_ij/r_c)^(k+1), k = 1..dim, with an analytic
  vjp, written independently of the package's descriptors (ase's neighbour list, not vesin).
* :func:`register_descriptor`: make it reachable as ``descriptors.get("radial-poly-test")``.
* :func:`synthetic_database`: a tiny ase.db of EMT-Cu-like cells (fcc, 2x2x2 cubic) whose
  entropies are exactly linear in that descriptor, S = w*·Σ D + c* N, so S_f = S_d - (N_d/N_b) S_b
  holds by construction. The CLI tests use ``W_TRUE``, ``C_TRUE`` for w*, c* and get a fresh copy
  from the ``db_path`` fixture of ``conftest.py``.
* :func:`only_subcommands` / :func:`run_cli`: run ``vibentropy`` in-process on a chosen set of
  sub-commands and capture its exit code, stdout and stderr.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from ase_vibentropy.descriptors.base import DescriptorProvider

A0_CU = 3.61
TEST_DESCRIPTOR = "radial-poly-test"

#: w* (k_B per descriptor unit, dim 4) and c* (k_B per atom) of the CLI tests' synthetic database.
W_TRUE = np.array([0.6, -1.1, 1.8, 0.4])
C_TRUE = 2.2
#: ``vibentropy`` options selecting the test descriptor with len(W_TRUE) components.
TEST_DESC_ARGS = ["--descriptor", TEST_DESCRIPTOR, "--param", f"dim={len(W_TRUE)}"]


class RadialPolyDescriptor(DescriptorProvider):
    """D_i,k = Σ_j (1 - r_ij/r_c)^(k+1), k = 1..dim: C¹ at r_c, analytic gradient."""

    name = TEST_DESCRIPTOR

    def __init__(self, r_cut: float = 4.0, dim: int = 4, species: list[str] | None = None):
        self.r_cut = float(r_cut)
        self._dim = int(dim)
        self._species = species

    @property
    def params(self) -> dict[str, Any]:
        return {"r_cut": self.r_cut, "dim": self._dim, "species": self._species}

    @property
    def dim(self) -> int:
        return self._dim

    def _powers(self) -> np.ndarray:
        return np.arange(2, self._dim + 2)

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        i, d = neighbor_list("id", atoms, self.r_cut)
        x = 1.0 - d / self.r_cut
        out = np.zeros((len(atoms), self._dim))
        np.add.at(out, i, x[:, None] ** self._powers())
        return out[centers]

    def vjp(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        w = self.check_weights(w)
        i, j, d, D = neighbor_list("ijdD", atoms, self.r_cut)
        x = 1.0 - d / self.r_cut
        p = self._powers()
        # d/dr Σ_k w_k x^p_k with dx/dr = -1/r_c; ∂r_ij/∂r_j = D/d = -∂r_ij/∂r_i.
        g = -(x[:, None] ** (p - 1) * (p * w)).sum(axis=1) / self.r_cut
        contrib = (g / d)[:, None] * D
        grad = np.zeros((len(atoms), 3))
        np.add.at(grad, j, contrib)
        np.add.at(grad, i, -contrib)
        return grad


def register_descriptor(monkeypatch) -> None:
    """Add :class:`RadialPolyDescriptor` to the descriptor registry for one test."""
    import ase_vibentropy.descriptors as registry

    original = registry._entry_points

    def patched() -> dict[str, Any]:
        eps = dict(original())
        eps[TEST_DESCRIPTOR] = SimpleNamespace(
            name=TEST_DESCRIPTOR, value="tests:RadialPolyDescriptor", load=lambda: RadialPolyDescriptor
        )
        return eps

    monkeypatch.setattr(registry, "_entry_points", patched)


def cu_bulk(n: int = 2, strain: float = 0.0) -> Atoms:
    """Perfect fcc Cu, n×n×n conventional cells at lattice constant A0_CU (1 + strain)."""
    return bulk("Cu", "fcc", a=A0_CU * (1 + strain), cubic=True) * (n, n, n)


def defect_cells(rng: np.random.Generator, n_cells: int = 2) -> list[tuple[str, float, Atoms]]:
    """(family, strain, atoms) of vacancies, divacancies and interstitials, rattled by 0.05 Å."""
    out = []
    for strain in (-0.01, 0.0, 0.01, 0.02):
        for family in ("V1", "V2", "I1"):
            for _ in range(3):
                atoms = cu_bulk(n_cells, strain)
                if family == "V1":
                    del atoms[int(rng.integers(len(atoms)))]
                elif family == "V2":
                    del atoms[[0, 1]]
                else:
                    a = A0_CU * (1 + strain)
                    atoms.append("Cu")
                    atoms.positions[-1] = [0.5 * a, 0.5 * a, 0.5 * a]  # octahedral site
                atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
                out.append((family, strain, atoms))
    return out


def linear_entropy_kB(atoms: Atoms, w: np.ndarray, c: float, descriptor: DescriptorProvider) -> float:
    """S = w · Σ_i D_i + c N, written with an explicit per-atom sum."""
    return float(sum(descriptor.compute(atoms)) @ w + c * len(atoms))


def synthetic_database(path, w: np.ndarray, c: float, rng: np.random.Generator, noise_kB: float = 0.0):
    """ase.db at ``path`` with rows per the database row contract and linear entropies."""
    import ase.db

    descriptor = RadialPolyDescriptor(dim=len(w))
    db = ase.db.connect(str(path))
    bulk_entropy = {}
    for family, strain, atoms in defect_cells(rng):
        ref = cu_bulk(2, strain)
        s_d = linear_entropy_kB(atoms, w, c, descriptor) + noise_kB * rng.standard_normal()
        if strain not in bulk_entropy:
            bulk_entropy[strain] = linear_entropy_kB(ref, w, c, descriptor)
        s_b = bulk_entropy[strain]
        db.write(
            atoms,
            family=family,
            strain=strain,
            n_cells=2,
            lattice="fcc",
            a0=A0_CU,
            element="Cu",
            S_kB=s_d,
            Sf_kB=s_d - len(atoms) / len(ref) * s_b,
            S_bulk_kB=s_b,
            n_bulk=len(ref),
            temperature=300.0,
        )
    return db


def only_subcommands(monkeypatch, names: tuple[str, ...]) -> None:
    """Build the CLI parser from ``names`` only, isolating them from sub-commands being written."""
    import ase_vibentropy.cli.main as cli_main

    monkeypatch.setattr(cli_main, "SUBCOMMAND_MODULES", tuple(names))


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``vibentropy *argv`` in-process: (exit code, stdout, stderr)."""
    from ase_vibentropy.cli.main import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
