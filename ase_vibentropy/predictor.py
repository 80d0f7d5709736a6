"""Entropies of structures from a fitted LDML model (paper Eq. 13-15; docs/theory.md).

:class:`EntropyPredictor` joins a fitted :class:`~ase_vibentropy.model.LDMLModel` (the
estimator on feature matrices) with what structure-level predictions need:

* the descriptor provider, built once, and the one descriptor-sum path
  (:func:`ase_vibentropy.parallel.descriptor_pass`, on threads, processes or a Dask cluster;
  it applies the perfect-lattice shortcut to bulk references);
* one cache of descriptor passes, keyed by an exact digest of species, cell, positions and pbc
  (the bulk reference and the S / S_f pair of one structure recur in a calculator);
* the perfect-lattice reference of a defect cell (``bulk="auto"``: the model's lattice and a0
  filling the same cubic cell, :func:`ase_vibentropy.harmonic.bulk_for_cell`);
* the exact classical temperature shift S(T) = S(T0) + n' k_B ln(T/T0) and the gradient;
* totals through the exact bulk: when the structure has a perfect-lattice reference and this
  install has the model's labelling potential with an analytic Hessian, the total entropy is
  S = (N_d/N_b) S_b + S_f with S_b exact (Bloch route, O(N_b)) and only S_f from the model.
  An extensive sum Σ_i w · D_i cannot represent the O(1) per-cell term of the three zero modes
  of a periodic cell (docs/theory.md); the exact S_b carries it, and the std of S is that of
  S_f. Structures without a reference get the model's own total (:meth:`total_route`).

The calculator, the CLI, the benchmarks and users' scripts all predict through this class.
It is not an estimator: refit the model, then build a new predictor.

Units: eV/K for entropies (k_B only inside the model), eV/K/Å for gradients, K, Å.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from typing import Any

import numpy as np
from ase import Atoms

from .errors import (
    CellMismatchError,
    DescriptorError,
    ModelDomainError,
    SupersededLabelsWarning,
    UnknownNameError,
)
from .harmonic.jump_core import core_terms
from .harmonic.saddle import check_jump_pair
from .model import LDMLModel, check_model_element, formation_features
from .parallel import DEFAULT_CHUNK_SIZE, EXECUTORS, DescriptorPass, dask_descriptor_passes, descriptor_pass
from .structure import cell_key, n_vibrational_modes, periodicity
from .units import KB_EV_PER_K

__all__ = ["EntropyPredictor", "formation_mode_excess"]

#: Descriptor passes kept by a predictor (at least; a prefetch of more keeps them all).
CACHE_SIZE = 16

#: Homogeneous strain step of the central differences giving ∂S/∂ε for descriptors without an
#: analytic strain gradient.
STRAIN_STEP = 1e-4

#: Voigt order of ASE stresses.
VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def formation_mode_excess(atoms: Atoms, bulk: Atoms) -> float:
    """n'_d - (N_d/N_b) n'_b, the T-dependent mode-count term of S_f (3(N_d/N_b - 1) periodic)."""
    return n_vibrational_modes(atoms) - len(atoms) / len(bulk) * n_vibrational_modes(bulk)


def check_same_cell(atoms: Atoms, bulk: Atoms) -> None:
    """S_f compares the defect with the perfect lattice in the SAME cell (Eq. 3)."""
    if periodicity(atoms) != periodicity(bulk):
        raise CellMismatchError("defect and bulk cells must both be periodic (or both isolated)")
    scale = max(float(np.abs(atoms.cell.array).max()), 1.0)
    if not np.allclose(atoms.cell.array, bulk.cell.array, rtol=0.0, atol=1e-6 * scale):
        raise CellMismatchError(
            "the bulk reference must fill the same cell as the defect structure (same volume "
            "and strain, Eq. 3); build it with ase_vibentropy.harmonic.bulk_for_cell"
        )


def _perfect_lattice_entropy(
    bulk: Atoms, calc: Any, lattice: str, a0: float, element: str, temperature: float
) -> float:
    """Exact classical S (eV/K) of the perfect cubic cell ``bulk``: from the force constants of a
    small cell Fourier-transformed onto the cell's own k-grid (O(N_b), any size;
    :func:`~ase_vibentropy.harmonic.embedding.perfect_lattice_log_pdet`), or, for cells narrower than
    twice the Hessian's range, from the Hessian of the whole cell (Bloch route)."""
    from .errors import EmbeddingCellTooSmallError
    from .harmonic import harmonic_entropy
    from .harmonic.embedding import perfect_lattice_log_pdet
    from .harmonic.bulk import cubic_cell_edge
    from .harmonic.entropy import classical_entropy_from_log_pdet

    edge = cubic_cell_edge(bulk)
    n = int(round(edge / a0))
    try:
        log_pdet = perfect_lattice_log_pdet(calc, lattice, element, edge / n, n)
    except EmbeddingCellTooSmallError:
        return float(harmonic_entropy(bulk, calc, temperature=temperature, solver="bloch", fmax=None).entropy)
    return float(classical_entropy_from_log_pdet(log_pdet, 3 * len(bulk) - 3, temperature))


class EntropyPredictor:
    """Structure-level predictions of a fitted LDML model.

    Parameters
    ----------
    model
        A fitted :class:`~ase_vibentropy.model.LDMLModel`, or a shipped-model name or a model
        file path (loaded with :func:`ase_vibentropy.model_io.load_model`).
    workers
        Local workers over spatial chunks (None: every CPU this process may use; 1: serial).
    scheduler
        Dask scheduler address, ``LocalCluster`` or ``Client``: passes run on that cluster.
    chunk_size
        Centre atoms per spatial chunk (None: ``parallel.DEFAULT_CHUNK_SIZE``).
    executor
        ``"thread"`` or ``"process"`` for the local workers.
    exact_bulk
        Compute totals as (N_d/N_b) S_b + S_f with S_b exact where possible (see the module
        docstring); False: always the model's own total Σ_i w · D_i + c N.

    The execution settings never change a result: chunked, parallel and Dask passes give the
    same sums as the serial one (they are reduced in chunk order).
    """

    def __init__(
        self,
        model: LDMLModel | str | os.PathLike,
        workers: int | None = None,
        scheduler: Any = None,
        chunk_size: int | None = None,
        executor: str = "thread",
        exact_bulk: bool = True,
    ) -> None:
        if isinstance(model, (str, os.PathLike)):
            from .model_io import load_model

            model = load_model(model)
        if not isinstance(model, LDMLModel):
            raise TypeError(
                "model must be a fitted LDMLModel, a shipped-model name or a model-file path, "
                f"got {type(model).__name__}"
            )
        model._check_fitted()
        if executor not in EXECUTORS:
            raise UnknownNameError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
        if workers is not None and int(workers) < 1:
            raise DescriptorError(f"workers must be >= 1 (or None for every CPU), got {workers}")
        self.model = model
        self.workers = None if workers is None else int(workers)
        self.scheduler = scheduler
        self.chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else int(chunk_size)
        self.executor = executor
        self.provider = model.descriptor_provider()
        self.exact_bulk = bool(exact_bulk)
        self._passes: dict[str, DescriptorPass] = {}
        self._bulk: tuple[bytes, Atoms] | None = None
        self._bulk_entropies: dict[tuple, float] = {}
        self._bulk_potential: Any = None  # the labelling potential, False when unavailable
        self._core_calc: Any = None  # its Hessian calculator, for migration models' cores

    def __repr__(self) -> str:
        return f"EntropyPredictor({self.provider!r}, target={self.model.target!r})"

    # ------------------------------------------------------------------ checks
    @property
    def total_defined(self) -> bool:
        """Whether the model gives total and local entropies (not only S_f)."""
        return self.model.target not in ("formation", "migration")

    @property
    def predicts_jumps(self) -> bool:
        """Whether the model is a migration model (ΔS_m of jumps; no entropy of one structure)."""
        return self.model.target == "migration"

    def _check_minimum_model(self) -> None:
        if self.predicts_jumps:
            raise ModelDomainError(
                "this model was trained on jumps (target 'migration'): it predicts the migration "
                "entropy ΔS_m of a minimum and a saddle, not the entropy of one structure; use "
                "predict_migration_entropy or predict_attempt_frequency, or a minimum model"
            )

    @property
    def has_gradient(self) -> bool:
        """Whether the descriptor has an analytic gradient (entropic and free-energy forces)."""
        return bool(self.provider.has_gradient)

    def check_atoms(self, atoms: Atoms) -> None:
        """Element check (:func:`~ase_vibentropy.model.check_model_element`) and a warning when
        the model's labels came from a superseded potential."""
        check_model_element(self.model.element, atoms)
        from .potentials import superseded_label_warning

        summary = getattr(self.model, "training_summary_", {})
        message = superseded_label_warning(summary.get("potential"))
        if message is not None:
            warnings.warn(message, SupersededLabelsWarning, stacklevel=3)

    def _check_total_defined(self) -> None:
        self._check_minimum_model()
        if not self.total_defined:
            raise ModelDomainError(
                "this model was trained on formation entropies only: its per-atom constant "
                "and the bulk part of w are undetermined, so total and local entropies are "
                "undefined; use predict_formation_entropy, or train with target='joint'"
            )

    def _temperature(self, temperature: float | None) -> float:
        temperature = self.model.temperature if temperature is None else float(temperature)
        if not temperature > 0:
            raise ModelDomainError(f"temperature must be positive (K), got {temperature}")
        return temperature

    # ------------------------------------------------------------------ bulk reference
    def bulk_reference(self, atoms: Atoms) -> Atoms:
        """The perfect lattice of the model's lattice and a0 filling the cubic cell of ``atoms``
        (:func:`ase_vibentropy.harmonic.bulk_for_cell`); the last one is kept for its cell."""
        key = cell_key(atoms)
        if self._bulk is not None and self._bulk[0] == key:
            return self._bulk[1]
        missing = [a for a in ("lattice", "a0", "element") if getattr(self.model, a, None) is None]
        if missing:
            raise ModelDomainError(
                f"a default bulk reference needs the model's {', '.join(missing)}, which it does "
                "not store: pass the perfect cell explicitly (Atoms in the same cell)"
            )
        from .harmonic import bulk_for_cell

        bulk = bulk_for_cell(atoms, self.model.lattice, self.model.a0, self.model.element)
        self._bulk = (key, bulk)
        return bulk

    # ------------------------------------------------------------------ descriptor passes
    def _key(self, atoms: Atoms) -> str:
        """Exact digest of provider, species, cell, positions and pbc (the weights are fixed:
        refit the model, then build a new predictor)."""
        digest = hashlib.sha1(self.provider.hash.encode())
        for part in (
            np.asarray(atoms.numbers, dtype=np.int64),
            np.asarray(atoms.cell.array, dtype=float),
            np.asarray(atoms.positions, dtype=float),
            np.asarray(atoms.pbc, dtype=bool),
        ):
            digest.update(np.ascontiguousarray(part).tobytes())
        return digest.hexdigest()

    def _cached(self, atoms: Atoms, local: bool) -> DescriptorPass | None:
        key = self._key(atoms)
        entry = self._passes.get(key)
        if entry is None or (local and entry.projection is None):
            return None
        self._passes[key] = self._passes.pop(key)  # most recently used last
        return entry

    def prefetch(self, structures: list[Atoms], local: bool = False) -> None:
        """Run the descriptor passes of ``structures`` now (all at once on a Dask cluster) and
        cache them, so the predictions that follow do no descriptor work.

        With ``local``, the passes also keep the per-atom projections w · D_i (N,) that
        :meth:`local_entropies` and :meth:`local_formation_entropies` need; at most one spatial
        chunk's descriptors are alive at a time either way.
        """
        weights = self.model.coef_ if local else None
        todo = [atoms for atoms in structures if self._cached(atoms, local) is None]
        if not todo:
            return
        if self.scheduler is not None:
            results = dask_descriptor_passes(
                self.scheduler, self.provider, todo, weights=weights, chunk_size=self.chunk_size
            )
        else:
            results = [
                descriptor_pass(
                    self.provider, atoms, weights=weights, chunk_size=self.chunk_size,
                    workers=self.workers, executor=self.executor,
                )
                for atoms in todo
            ]
        room = max(CACHE_SIZE, 2 * len(structures))
        for atoms, result in zip(todo, results):
            key = self._key(atoms)
            self._passes.pop(key, None)  # a local pass replaces the sums-only one
            while len(self._passes) >= room:
                self._passes.pop(next(iter(self._passes)))  # least recently used first
            self._passes[key] = result

    def _pass(self, atoms: Atoms, local: bool = False) -> DescriptorPass:
        cached = self._cached(atoms, local)
        if cached is None:
            self.prefetch([atoms], local=local)
            cached = self._cached(atoms, local)
        assert cached is not None
        return cached

    def descriptor_sum(self, atoms: Atoms) -> np.ndarray:
        """Σ_i D_i of ``atoms``, shape (dim,), descriptor units.

        A perfect Bravais lattice costs one small cell (Σ D = N D_perfect).
        """
        return np.asarray(self._pass(atoms).total, dtype=float).copy()

    def local_projections(self, atoms: Atoms) -> np.ndarray:
        """w · D_i for every atom, shape (N,), k_B at the training temperature (no constant c).

        Streamed over spatial chunks: the (N, dim) descriptor array is never formed.
        """
        return np.asarray(self._pass(atoms, local=True).projection, dtype=float).copy()

    def _core_calculator(self) -> Any:
        """Hessian calculator of the labelling potential, for a migration model's cores."""
        potential = self._labelling_potential()
        if potential is None:
            raise ModelDomainError(
                "this migration model's exact core needs the Hessian of the potential it was "
                f"trained on ({self.model.training_summary_.get('potential')}), which this "
                "install does not have; use a migration model without a core")
        if self._core_calc is None:
            self._core_calc = potential.hessian_calculator()
        return self._core_calc

    # ------------------------------------------------------------------ exact bulk
    def _labelling_potential(self) -> Any | None:
        if self._bulk_potential is None:
            from .domain import labelling_potential_for

            potential = labelling_potential_for(self.model)
            self._bulk_potential = potential if potential is not None and potential.analytic_hessian else False
        return self._bulk_potential or None

    def exact_bulk_entropy(self, bulk: Atoms, temperature: float | None = None) -> float | None:
        """Exact classical entropy of the perfect lattice ``bulk`` in eV/K, from the model's
        labelling potential (Bloch route), or None when this install does not have that
        potential with an analytic Hessian. Cached per cell and temperature."""
        potential = self._labelling_potential()
        if potential is None:
            return None
        temperature = self._temperature(temperature)
        key = (cell_key(bulk), len(bulk), temperature)
        if key not in self._bulk_entropies:
            self._bulk_entropies[key] = _perfect_lattice_entropy(
                bulk, potential.hessian_calculator(), self.model.lattice, self.model.a0,
                self.model.element, temperature,
            )
        return self._bulk_entropies[key]

    def _bulk_for_total(self, atoms: Atoms) -> Atoms | None:
        """The perfect-lattice reference a total of ``atoms`` goes through, or None."""
        if not self.exact_bulk or periodicity(atoms) != "periodic" or self._labelling_potential() is None:
            return None
        try:
            bulk = self.bulk_reference(atoms)
        except (CellMismatchError, ModelDomainError):
            return None  # no perfect-lattice reference: the model's own total
        from .domain import MAX_SITE_MISMATCH

        return None if abs(len(atoms) - len(bulk)) > MAX_SITE_MISMATCH * len(bulk) else bulk

    def _exact_bulk_reference(self, atoms: Atoms, temperature: float) -> tuple[Atoms, float] | None:
        """(bulk, S_b eV/K) when the total of ``atoms`` goes through the exact bulk, else None."""
        bulk = self._bulk_for_total(atoms)
        return None if bulk is None else (bulk, self.exact_bulk_entropy(bulk, temperature))

    def total_route(self, atoms: Atoms) -> str:
        """How :meth:`predict_entropy` gets the total of ``atoms``: ``"exact bulk + S_f"`` or
        ``"model"`` (Σ_i w · D_i + c N)."""
        return "model" if self._bulk_for_total(atoms) is None else "exact bulk + S_f"

    # ------------------------------------------------------------------ predictions
    def predict_entropy(
        self, atoms: Atoms, temperature: float | None = None, return_std: bool = False
    ) -> float | tuple[float, float]:
        """Total vibrational entropy S(T) of ``atoms`` in eV/K.

        Through the exact bulk where possible (:meth:`total_route`): S = (N_d/N_b) S_b + S_f,
        S_b exact at T, S_f from the model (any model, formation-only ones included), std that
        of S_f. Otherwise the model's own total (Eq. 14 plus c N),
        S(T) = S(T0) + n' k_B ln(T/T0), n' = 3N - 3 (periodic) or 3N - 6 (isolated), with its
        predictive standard deviation. Both in eV/K.
        """
        temperature = self._temperature(temperature)
        exact = self._exact_bulk_reference(atoms, temperature)
        if exact is not None:
            bulk, s_bulk = exact
            s_f, std = self.predict_formation_entropy(atoms, bulk, temperature, return_std=True)
            entropy = len(atoms) / len(bulk) * s_bulk + s_f
            return (entropy, std) if return_std else entropy
        self._check_total_defined()
        self.check_atoms(atoms)
        x = self.descriptor_sum(atoms)
        mean, std = self.model.predict(x[None, :], return_std=True, n_atoms=[len(atoms)], is_total=True)
        shift = n_vibrational_modes(atoms) * np.log(temperature / self.model.temperature)
        entropy = float(mean[0] + shift) * KB_EV_PER_K
        return (entropy, float(std[0]) * KB_EV_PER_K) if return_std else entropy

    def predict_formation_entropy(
        self,
        atoms: Atoms,
        bulk: Atoms | None = None,
        temperature: float | None = None,
        return_std: bool = False,
    ) -> float | tuple[float, float]:
        """Formation entropy S_f(T) = w · (Σ D^d - (N_d/N_b) Σ D^b) (Eq. 15) in eV/K.

        ``bulk`` is the perfect lattice filling the same cell (same volume and strain); None
        builds it from the model's lattice (:meth:`bulk_reference`).
        S_f(T) = S_f(T0) + (n'_d - (N_d/N_b) n'_b) k_B ln(T/T0). With ``return_std``, also the
        predictive standard deviation in eV/K.
        """
        self._check_minimum_model()
        bulk = self.bulk_reference(atoms) if bulk is None else bulk
        self.check_atoms(atoms)
        self.check_atoms(bulk)
        check_same_cell(atoms, bulk)
        temperature = self._temperature(temperature)
        x = formation_features(self.descriptor_sum(atoms), len(atoms), self.descriptor_sum(bulk), len(bulk))
        mean, std = self.model.predict(x[None, :], return_std=True, is_total=False)
        shift = formation_mode_excess(atoms, bulk) * np.log(temperature / self.model.temperature)
        entropy = float(mean[0] + shift) * KB_EV_PER_K
        return (entropy, float(std[0]) * KB_EV_PER_K) if return_std else entropy

    def predict_migration_entropy(
        self, minimum: Atoms, saddle: Atoms, temperature: float | None = None, return_std: bool = False
    ) -> float | tuple[float, float]:
        """Migration entropy ΔS_m = S_saddle (3N - 4 modes) - S_minimum (3N - 3 modes) of the
        jump from ``minimum`` over the first-order ``saddle`` (same atoms, same cell), eV/K,
        from a migration model: w · (Σ D^saddle - Σ D^minimum) + b at the model's T0, shifted
        exactly (classical, one mode fewer at the saddle) by -k_B ln(T/T0). A model with an
        exact core (``model.core_radius``) gives ΔS_core(R) + w · Σ_{outside the core} ΔD + b
        instead, ΔS_core from two dense spectra of the core's Hessian blocks with the
        model's labelling potential (:mod:`ase_vibentropy.harmonic.jump_core`); its std is
        that of the outer term. With ``return_std``, also the predictive standard deviation,
        eV/K.

        Raises
        ------
        ModelDomainError
            The model is not a migration model, or it has a core and this install lacks its
            labelling potential.
        CellMismatchError
            The two structures differ in cell or atom count.
        NotAFirstOrderSaddleError
            The core of the jump has no unstable mode (it reaches past R): use the exact route.
        """
        if not self.predicts_jumps:
            raise ModelDomainError(
                f"this model's target is {self.model.target!r}: migration entropies need a model "
                "trained on saddles (target 'migration', for example fe-mendelev2003-saddles)"
            )
        self.check_atoms(minimum)
        self.check_atoms(saddle)
        check_jump_pair(minimum, saddle)
        temperature = self._temperature(temperature)
        saddle_sum, minimum_sum = self.descriptor_sum(saddle), self.descriptor_sum(minimum)
        core_kB, x = 0.0, saddle_sum - minimum_sum
        if self.model.core_radius is not None:
            terms = core_terms(minimum, saddle, self._core_calculator(),
                               self.provider, self.model.temperature,
                               saddle_sum, minimum_sum, radius=self.model.core_radius,
                               moved=self.model.core_moved)
            core_kB, x = terms.delta_s_kB, terms.outer_features
        mean, std = self.model.predict(x[None, :], return_std=True)
        entropy = float(core_kB + mean[0] - np.log(temperature / self.model.temperature)) * KB_EV_PER_K
        return (entropy, float(std[0]) * KB_EV_PER_K) if return_std else entropy

    def predict_attempt_frequency(
        self, minimum: Atoms, saddle: Atoms, temperature: float | None = None, return_std: bool = False
    ) -> float | tuple[float, float]:
        """Vineyard attempt frequency ν* (THz) of the jump, from the predicted ΔS_m:
        ΔS_m/k_B = ln(h ν*/k_B T) - 1 (classical harmonic transition-state theory,
        docs/theory.md). With ``return_std``, also the one-sigma factor exp(σ(ΔS_m)/k_B): ν*
        lies within [ν*/factor, ν* factor] at one sigma."""
        from .harmonic.saddle import vineyard_frequency_THz

        temperature = self._temperature(temperature)
        delta_s, std = self.predict_migration_entropy(minimum, saddle, temperature, return_std=True)
        nu = vineyard_frequency_THz(delta_s / KB_EV_PER_K, temperature)
        return (nu, float(np.exp(std / KB_EV_PER_K))) if return_std else nu

    def local_entropies(self, atoms: Atoms, temperature: float | None = None) -> np.ndarray:
        """Per-atom entropies s_i = w · D_i + c (Eq. 13), shape (N,), eV/K; Σ_i s_i = S.

        The temperature shift n' k_B ln(T/T0) is shared equally (n'/N per atom), which is exact
        for a single element (the zero modes weigh 1/N on every atom). When the total goes
        through the exact bulk (:meth:`total_route`), s_i = S_b/N_b + w · (D_i - <D>_b) plus
        the shift, so that Σ_i s_i is that total.
        """
        temperature = self._temperature(temperature)
        exact = self._exact_bulk_reference(atoms, temperature)
        if exact is not None:
            bulk, s_bulk = exact
            return s_bulk / len(bulk) + self.local_formation_entropies(atoms, bulk, temperature)
        self._check_total_defined()
        self.check_atoms(atoms)
        per_atom = self.local_projections(atoms) + self.model.per_atom_constant_
        shift = n_vibrational_modes(atoms) / len(atoms) * np.log(temperature / self.model.temperature)
        return (per_atom + shift) * KB_EV_PER_K

    def local_formation_entropies(
        self, atoms: Atoms, bulk: Atoms | None = None, temperature: float | None = None
    ) -> np.ndarray:
        """Local formation contributions w · (D_i - <D>_b), shape (N_d,), eV/K; they sum to S_f.

        <D>_b = Σ D^b / N_b is the mean bulk descriptor of the reference cell (None: built from
        the model's lattice, :meth:`bulk_reference`).
        """
        self._check_minimum_model()
        bulk = self.bulk_reference(atoms) if bulk is None else bulk
        self.check_atoms(atoms)
        self.check_atoms(bulk)
        check_same_cell(atoms, bulk)
        temperature = self._temperature(temperature)
        mean_bulk = self.descriptor_sum(bulk) / len(bulk)
        per_atom = self.local_projections(atoms) - mean_bulk @ self.model.coef_
        shift_per_atom = (
            n_vibrational_modes(atoms) / len(atoms) - n_vibrational_modes(bulk) / len(bulk)
        ) * np.log(temperature / self.model.temperature)
        return (per_atom + shift_per_atom) * KB_EV_PER_K

    def entropy_gradient(self, atoms: Atoms) -> np.ndarray:
        """∂S/∂r_k = w · ∂(Σ_i D_i)/∂r_k, shape (N, 3), eV/K/Å (T-independent; c drops out).

        The same gradient is that of S_f at fixed bulk reference.
        """
        self.check_atoms(atoms)
        if not self.has_gradient:
            raise DescriptorError(
                f"the {self.provider!r} descriptor has no analytic gradient: entropic forces and "
                "free-energy forces need a model whose descriptor has one (e.g. "
                "fe-mendelev2003-afs); use mode='entropy' or another model"
            )
        return np.asarray(self.provider.vjp(atoms, self.model.coef_)) * KB_EV_PER_K

    def entropy_strain_derivative(self, atoms: Atoms) -> np.ndarray:
        """(1/V) ∂S/∂ε in Voigt order (xx, yy, zz, yz, xz, xy), eV/K/Å³, shape (6,), in ASE's
        stress convention (symmetric strain of cell and positions).

        Analytic (the descriptor's :meth:`strain_gradient`, the pair virial of w · Σ D) when the
        descriptor has one, as AFS; otherwise central differences of S under homogeneous strain
        (step :data:`STRAIN_STEP`, 12 predictions). The per-atom constant and the classical
        temperature term do not depend on strain, so the result is T-independent.
        """
        self._check_total_defined()
        self.check_atoms(atoms)
        if self.provider.has_strain_gradient:
            virial = np.asarray(self.provider.strain_gradient(atoms, self.model.coef_), dtype=float)
            virial = 0.5 * (virial + virial.T)
            voigt = np.array([virial[i, j] for i, j in VOIGT])
            return voigt * KB_EV_PER_K / atoms.get_volume()
        h = STRAIN_STEP
        cell = atoms.cell.array
        out = np.zeros(6)
        for k, (i, j) in enumerate(VOIGT):
            values = []
            for sign in (1.0, -1.0):
                strain = np.eye(3)
                strain[i, j] += sign * h
                if i != j:
                    strain[j, i] += sign * h
                strained = atoms.copy()
                strained.calc = None
                strained.set_cell(cell @ strain, scale_atoms=True)
                values.append(self.predict_entropy(strained))
            # A shear step moves two tensor components at once, hence 4h.
            out[k] = (values[0] - values[1]) / ((2.0 if i == j else 4.0) * h)
        return out / atoms.get_volume()
