"""ASE calculator predicting the harmonic vibrational entropy with an LDML model.

:class:`VibEntropyCalculator` wraps an optional energy/force calculator (EAM, DFT, ...) and adds
the vibrational entropy of the LDML surrogate (Lapointe et al., PRM 4, 063802, 2020, Eq. 14-15):

* ``mode="entropy"`` (default): every property of the wrapped calculator passes through
  unchanged, so optimizers, filters, NEB and MD behave exactly as with the wrapped calculator;
  the entropy properties are computed only when asked for.
* ``mode="free_energy"``: ``energy`` becomes U - T S_vib and ``free_energy`` becomes the
  wrapped calculator's own free energy minus T S_vib (ASE's force-consistent energy stays the
  one consistent with the forces, which cell filters and line searches rely on; the electronic
  part is untouched). ``forces`` become -∇(U - T S_vib) = F_U + T ∇S_vib, with ∇S_vib from the
  descriptor gradients, and ``stress`` becomes σ_U - T (1/V) ∂S_vib/∂ε, so BFGS, FIRE, NEB, MD
  and cell filters run on the harmonic free-energy surface at temperature T. The vibrational
  part alone is ``vibrational_free_energy`` (-T S_vib). This goes beyond the paper, whose model
  was fitted to relaxed minima only.

``implemented_properties`` lists exactly what this configuration delivers: the total-entropy
properties only for models that define S (not formation-only ones), the formation properties
only with a bulk reference, free-energy forces only for descriptors with a gradient.

Entropy properties (units in brackets): ``vibrational_entropy`` (eV/K), ``local_entropies``
((N,) eV/K), ``vibrational_entropy_std`` (eV/K, Bayesian predictive standard deviation),
``formation_entropy`` and ``formation_entropy_std`` (eV/K, Eq. 3, need a bulk reference) and ``vibrational_free_energy``
(-T S_vib, eV). ASE's file writers drop properties they do not know: call
:func:`store_entropy_results` to copy them into ``atoms.info`` / ``atoms.arrays`` before writing.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import (
    BaseCalculator,
    Calculator,
    PropertyNotImplementedError,
    all_changes,
)

from .domain import (
    DomainWarning,
    FarFromMinimumWarning,
    HighUncertaintyWarning,
    OutsideTrainingDomainWarning,
    check_reference_lattice,
    force_calculator_for,
    residual_force_message,
    training_domain_messages,
    uncertainty_message,
)
from .errors import ModelDomainError, UnknownNameError, VibEntropyError
from .model_io import DEFAULT_MODEL
from .predictor import EntropyPredictor
from .units import DEFAULT_TEMPERATURE_K, KB_EV_PER_K

__all__ = [
    "DEFAULT_MODEL",
    "DomainWarning",
    "FarFromMinimumWarning",
    "HighUncertaintyWarning",
    "OutsideTrainingDomainWarning",
    "VibEntropyCalculator",
    "entropy_db_entries",
    "store_entropy_results",
]


#: Entropy properties this calculator adds to those of the wrapped calculator.
ENTROPY_PROPERTIES = (
    "vibrational_entropy",
    "vibrational_entropy_std",
    "vibrational_free_energy",
    "local_entropies",
    "formation_entropy",
    "formation_entropy_std",
)

#: Properties that need a bulk reference.
_FORMATION_PROPERTIES = ("formation_entropy", "formation_entropy_std")

#: Properties that need a model defining the total entropy (not a formation-only model).
_TOTAL_PROPERTIES = ("vibrational_entropy", "vibrational_entropy_std", "vibrational_free_energy",
                     "local_entropies")

#: Wrapped-calculator properties that the free-energy mode replaces or cannot provide.
_FREE_ENERGY_REPLACED = ("energy", "free_energy", "forces", "stress")
_FREE_ENERGY_UNAVAILABLE = ("energies", "stresses")

_MODES = ("entropy", "free_energy")


class MissingBaseCalculatorError(VibEntropyError, PropertyNotImplementedError):
    """An energy-like property was asked for but no energy/force calculator is wrapped.

    Derives from ASE's ``PropertyNotImplementedError`` so that ASE code probing for optional
    properties (``ase.db``, file writers) keeps working.
    """


class UnavailablePropertyError(VibEntropyError, PropertyNotImplementedError):
    """A property that this configuration cannot provide (the message says which setting would)."""


def _warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the first frame outside this module and ASE's internals.

    The call depth varies (``atoms.get_forces`` -> ASE -> this calculator), so a fixed
    ``stacklevel`` would point into ASE; the user's line is the useful one.
    """
    import ase

    internal = (os.path.abspath(__file__), os.path.dirname(os.path.abspath(ase.__file__)) + os.sep)
    level = 2
    frame = sys._getframe(1)
    while frame is not None and (
        os.path.abspath(frame.f_code.co_filename) == internal[0]
        or os.path.abspath(frame.f_code.co_filename).startswith(internal[1])
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def _resolve_predictor(model: Any) -> EntropyPredictor:
    """An :class:`EntropyPredictor` from ``None`` (the default model), a name, a path, a fitted
    model or a predictor."""
    if isinstance(model, EntropyPredictor):
        predictor = model
    elif model is None:
        try:
            return EntropyPredictor(DEFAULT_MODEL)
        except UnknownNameError as exc:
            raise UnknownNameError(
                f"the default model {DEFAULT_MODEL!r} is not installed with this copy of "
                f"ase-vibentropy ({exc}); pass model=<shipped name, model file or LDMLModel>"
            ) from exc
    else:
        predictor = EntropyPredictor(model)  # TypeError for anything but a name, a path or a model
    if predictor.predicts_jumps:
        raise ModelDomainError(
            "a migration model (target 'migration') predicts ΔS_m of a minimum and a saddle, not "
            "the entropy of one structure: use EntropyPredictor.predict_migration_entropy or "
            "'vibentropy prefactor --model', and a minimum model here"
        )
    return predictor


class VibEntropyCalculator(Calculator):
    """Harmonic vibrational entropy from an LDML model, on top of an optional force calculator.

    Parameters
    ----------
    model
        ``None`` (the shipped default, ``model_io.DEFAULT_MODEL``), a shipped-model name, a path to
        a model file, a fitted :class:`~ase_vibentropy.model.LDMLModel` or an
        :class:`~ase_vibentropy.predictor.EntropyPredictor` (whose execution settings, e.g.
        workers or a Dask scheduler, are then used).
    calc
        Energy/force calculator to wrap (EMT, EAM, LAMMPSlib, DFT, ...). Its properties pass
        through unchanged in ``mode="entropy"``. Required for ``mode="free_energy"``.
    temperature
        Temperature T, K. Classical harmonic entropies depend on T only through
        n' k_B ln T (Eq. 2), the formation entropy hardly at all.
    bulk
        Bulk reference for ``formation_entropy`` (Eq. 3, S_f = S_d - (N_d/N_b) S_b):
        ``None`` (property not available), ``"auto"`` (the perfect lattice of the model's
        ``lattice`` and ``a0`` filling the same cubic cell, rebuilt whenever the cell changes,
        see :func:`ase_vibentropy.harmonic.bulk_for_cell`) or an ``Atoms`` object in the same cell.
    mode
        ``"entropy"`` or ``"free_energy"`` (energy U - T S_vib, forces F_U + T ∇S_vib).
        In ``"free_energy"`` mode the stress (when the wrapped calculator has one) is
        σ_U - T (1/V) ∂S/∂ε (:meth:`entropy_strain_derivative`: analytic for descriptors with a
        strain gradient, such as AFS; else central differences, 12 model evaluations).
    std_warning_kB
        Warn (:class:`HighUncertaintyWarning`) when the predictive standard deviation of S_vib
        exceeds this many k_B; ``None`` disables the check.
    fmax_warning
        Warn (:class:`FarFromMinimumWarning`) when an entropy is computed while the largest
        force exceeds this, eV/Å (harmonic entropies assume a minimum): the forces of the
        wrapped calculator, or without one those of the potential the model was trained on,
        when this install has it (``fe-mendelev2003`` always). ``None`` disables the check
        and the force evaluation it needs. Structures outside the training cells and strains
        give an :class:`OutsideTrainingDomainWarning`.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator` (``label``, ``directory``).

    Notes
    -----
    Results are cached the ASE way: a second request for the same structure does no work, and
    any change of positions, numbers, cell or pbc discards them (``Calculator.check_state``).
    The wrapped calculator keeps its own cache, so it is never asked twice for one structure.
    The internal energy U in ``mode="free_energy"`` is ``calc.calc.get_potential_energy(atoms)``.
    """

    default_parameters: dict[str, Any] = {
        "temperature": DEFAULT_TEMPERATURE_K,
        "mode": "entropy",
        "std_warning_kB": 3.0,
        "fmax_warning": 0.05,
    }

    def __init__(
        self,
        model: Any = None,
        calc: BaseCalculator | None = None,
        temperature: float = DEFAULT_TEMPERATURE_K,
        bulk: Atoms | str | None = None,
        mode: str = "entropy",
        std_warning_kB: float | None = 3.0,
        fmax_warning: float | None = 0.05,
        **kwargs: Any,
    ) -> None:
        if calc is not None and not hasattr(calc, "get_property"):
            raise TypeError(f"calc must be an ASE calculator, got {type(calc).__name__}")
        if isinstance(bulk, str) and bulk != "auto":
            raise ValueError(f"bulk must be None, 'auto' or an Atoms object, got {bulk!r}")
        if bulk is not None and not isinstance(bulk, (str, Atoms)):
            raise TypeError(f"bulk must be None, 'auto' or an Atoms object, got {type(bulk).__name__}")
        self._model_spec = model
        self.predictor = _resolve_predictor(model)
        self.calc = calc
        self.bulk = bulk.copy() if isinstance(bulk, Atoms) else bulk
        self._force_check_calc: Any = None  # the model's potential for the force check, or False
        super().__init__(
            temperature=float(temperature),
            mode=mode,
            std_warning_kB=std_warning_kB,
            fmax_warning=fmax_warning,
            **kwargs,
        )

    # ------------------------------------------------------------------ configuration
    def set(self, **kwargs: Any) -> dict[str, Any]:
        """Change ``temperature``, ``mode``, ``std_warning_kB`` or ``fmax_warning``.

        A new temperature or mode discards the cached results (the wrapped calculator keeps its
        own). Returns the changed parameters.
        """
        unknown = sorted(set(kwargs) - set(self.default_parameters))
        if unknown:
            raise TypeError(
                f"unknown VibEntropyCalculator parameter(s) {unknown}; known: "
                f"{sorted(self.default_parameters)} (model, calc and bulk are fixed at construction)"
            )
        if "mode" in kwargs and kwargs["mode"] not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {kwargs['mode']!r}")
        if "temperature" in kwargs:
            temperature = float(kwargs["temperature"])
            if not np.isfinite(temperature) or temperature <= 0.0:
                raise ValueError(f"temperature must be a positive number of K, got {temperature}")
            kwargs["temperature"] = temperature
        # checked before anything changes: a refused set() leaves the calculator as it was
        mode = kwargs.get("mode", self.parameters.get("mode", "entropy"))
        if mode == "free_energy" and self.calc is None:
            raise MissingBaseCalculatorError(
                "mode='free_energy' needs an energy/force calculator for U: pass calc=..., "
                "e.g. VibEntropyCalculator(model, calc=EMT(), mode='free_energy')"
            )
        if mode == "free_energy" and not self.predictor.total_defined:
            raise UnavailablePropertyError(
                "mode='free_energy' needs the total entropy S_vib, which a formation-only model "
                "does not define: use a model trained with target='joint' or 'total'"
            )
        changed = super().set(**kwargs)
        if "temperature" in changed or "mode" in changed:
            self.reset()
        self.implemented_properties = self._implemented_properties()
        return changed

    @property
    def temperature(self) -> float:
        """Temperature T, K."""
        return float(self.parameters["temperature"])

    @property
    def mode(self) -> str:
        """``"entropy"`` or ``"free_energy"``."""
        return str(self.parameters["mode"])

    @property
    def model(self) -> Any:
        """The fitted :class:`~ase_vibentropy.model.LDMLModel`."""
        return self.predictor.model

    def _base_properties(self) -> list[str]:
        if self.calc is None:
            return []
        return list(getattr(self.calc, "implemented_properties", []))

    def _implemented_properties(self) -> list[str]:
        """What this configuration delivers, and nothing else."""
        base = self._base_properties()
        if self.mode == "free_energy":
            base = [p for p in base if p not in _FREE_ENERGY_UNAVAILABLE]
            if not self.predictor.has_gradient:
                base = [p for p in base if p != "forces"]  # stress falls back to differences
        entropy = [
            p for p in ENTROPY_PROPERTIES
            if (p not in _FORMATION_PROPERTIES or self.bulk is not None)
            and (p not in _TOTAL_PROPERTIES or self.predictor.total_defined)
        ]
        return base + entropy

    def todict(self, skip_default: bool = True) -> dict[str, Any]:
        """JSON-serialisable parameters (``ase.db`` stores them with each row)."""
        dct = super().todict(skip_default=skip_default)
        spec = self._model_spec
        if spec is None:
            dct["model"] = DEFAULT_MODEL
        elif isinstance(spec, (str, os.PathLike)):
            dct["model"] = os.fspath(spec)
        else:
            dct["model"] = type(spec).__name__
        if self.calc is not None:
            dct["calc"] = getattr(self.calc, "name", type(self.calc).__name__)
        if self.bulk is not None:
            dct["bulk"] = "auto" if isinstance(self.bulk, str) else self.bulk.get_chemical_formula()
        return dct

    # ------------------------------------------------------------------ property access
    def get_property(self, name: str, atoms: Atoms | None = None, allow_calculation: bool = True) -> Any:
        """ASE property access, with errors that say which setting provides a missing property."""
        if name not in self.implemented_properties:
            raise self._unavailable(name)
        return super().get_property(name, atoms, allow_calculation)

    def _unavailable(self, name: str) -> PropertyNotImplementedError:
        if name in _TOTAL_PROPERTIES and not self.predictor.total_defined:
            return UnavailablePropertyError(
                f"{name} needs the total entropy, which this formation-only model does not "
                "define: ask for formation_entropy (with bulk='auto'), or use a model trained "
                "with target='joint'"
            )
        if self.mode == "free_energy" and name == "forces" and not self.predictor.has_gradient:
            return UnavailablePropertyError(
                f"free-energy forces need the gradient of S_vib, but the {self.predictor.provider!r} "
                "descriptor has none: use a model whose descriptor has a gradient (e.g. "
                "fe-mendelev2003-afs), or mode='entropy'"
            )
        if name in _FORMATION_PROPERTIES:
            return UnavailablePropertyError(
                f"{name} needs a bulk reference: pass bulk='auto' (perfect lattice of the "
                "model's lattice and a0 in the same cell) or bulk=<Atoms of the perfect cell>"
            )
        if self.mode == "free_energy" and name in _FREE_ENERGY_UNAVAILABLE:
            return UnavailablePropertyError(
                f"{name} is not available in mode='free_energy' (the entropy has no per-atom "
                "stress or energy decomposition): use 'stress' and 'energy', or mode='entropy'"
            )
        if self.calc is None:
            return MissingBaseCalculatorError(
                f"{name!r} needs an energy/force calculator, but VibEntropyCalculator wraps none: "
                "pass calc=..., e.g. VibEntropyCalculator(model, calc=EMT())"
            )
        return PropertyNotImplementedError(
            f"{name!r} is provided neither by the wrapped {type(self.calc).__name__} nor by the "
            f"entropy model (available: {', '.join(self.implemented_properties)})"
        )

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("vibrational_entropy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        """Fill ``self.results`` with ``properties`` (and whatever comes for free with them)."""
        super().calculate(atoms, list(properties), list(system_changes))
        atoms = self.atoms
        for name in properties:
            if name in self.results:
                continue
            if name in ENTROPY_PROPERTIES:
                self._calculate_entropy_property(atoms, name)
            elif self.mode == "free_energy" and name in _FREE_ENERGY_REPLACED:
                self._calculate_free_energy_property(atoms, name)
            else:
                self._pass_through(atoms, name)

    def _pass_through(self, atoms: Atoms, name: str) -> None:
        assert self.calc is not None
        self.results[name] = self.calc.get_property(name, atoms)
        # Results the wrapped calculator produced together with this one come for free.
        for key, value in getattr(self.calc, "results", {}).items():
            if key in self._base_properties() and key not in self.results:
                if self.mode == "free_energy" and key in _FREE_ENERGY_REPLACED + _FREE_ENERGY_UNAVAILABLE:
                    continue
                self.results[key] = value.copy() if isinstance(value, np.ndarray) else value

    # ------------------------------------------------------------------ entropy
    def _check_domain(self, atoms: Atoms) -> None:
        """Warn about residual forces and structures outside the model's training domain.

        The forces come from the wrapped calculator, or, without one, from the potential the
        model was trained on when this install has it (:func:`ase_vibentropy.domain.force_calculator_for`).
        """
        self.predictor.check_atoms(atoms)
        for message in training_domain_messages(self.model, atoms):
            _warn(message, OutsideTrainingDomainWarning)
        fmax = self.parameters["fmax_warning"]
        # In free-energy mode the user asks for structures off the U minimum on purpose.
        if fmax is None or self.mode != "entropy":
            return
        if self.calc is not None and "forces" in self._base_properties():
            forces = self.calc.get_property("forces", atoms)
        else:
            if self._force_check_calc is None:
                self._force_check_calc = force_calculator_for(self.model) or False
            if self._force_check_calc is False:
                return
            probe = atoms.copy()
            probe.calc = self._force_check_calc
            forces = probe.get_forces()
        message = residual_force_message(forces, fmax)
        if message is not None:
            _warn(message, FarFromMinimumWarning)

    def _warn_uncertainty(self, what: str, std_eV_per_K: float) -> None:
        message = uncertainty_message(what, std_eV_per_K / KB_EV_PER_K, self.parameters["std_warning_kB"])
        if message is not None:
            _warn(message, HighUncertaintyWarning)

    def _calculate_entropy_property(self, atoms: Atoms, name: str) -> None:
        # Cheap (element test, cached base forces); identical warnings are shown once by Python.
        self._check_domain(atoms)
        if name in ("vibrational_entropy", "vibrational_entropy_std", "vibrational_free_energy"):
            self._ensure_total_entropy(atoms)
        elif name == "local_entropies":
            local = self.predictor.local_entropies(atoms, temperature=self.temperature)
            self.results["local_entropies"] = np.asarray(local, dtype=float)
        elif name in _FORMATION_PROPERTIES:
            bulk = self._bulk_reference(atoms)
            value, std = self.predictor.predict_formation_entropy(
                atoms, bulk, temperature=self.temperature, return_std=True
            )
            self._warn_uncertainty("the formation entropy", float(std))
            self.results["formation_entropy"] = float(value)
            self.results["formation_entropy_std"] = float(std)

    def _ensure_total_entropy(self, atoms: Atoms) -> None:
        if "vibrational_entropy" in self.results:
            return
        T = self.temperature
        value, std = self.predictor.predict_entropy(atoms, temperature=T, return_std=True)
        self._warn_uncertainty("the vibrational entropy", float(std))
        self.results["vibrational_entropy"] = float(value)
        self.results["vibrational_entropy_std"] = float(std)
        self.results["vibrational_free_energy"] = -T * float(value)

    def _bulk_reference(self, atoms: Atoms) -> Atoms:
        if isinstance(self.bulk, Atoms):
            check_reference_lattice(atoms, self.bulk)
            return self.bulk
        try:
            bulk = self.predictor.bulk_reference(atoms)
        except ModelDomainError as exc:
            raise UnavailablePropertyError(f"bulk='auto': {exc}") from exc
        check_reference_lattice(atoms, bulk)
        return bulk

    # ------------------------------------------------------------------ free energy
    def _calculate_free_energy_property(self, atoms: Atoms, name: str) -> None:
        assert self.calc is not None
        T = self.temperature
        if name in ("energy", "free_energy"):
            self._check_domain(atoms)
            self._ensure_total_entropy(atoms)
            internal = self.calc.get_property(name, atoms)
            # F = U - T S_vib (classical harmonic free energy of the vibrations).
            self.results[name] = float(internal) - T * self.results["vibrational_entropy"]
        elif name == "forces":
            forces_U = self.calc.get_property("forces", atoms)
            gradient = np.asarray(self.predictor.entropy_gradient(atoms), dtype=float)
            # -∇(U - T S) = F_U + T ∇S.
            self.results["forces"] = forces_U + T * gradient
        elif name == "stress":
            stress_U = np.asarray(self.calc.get_property("stress", atoms), dtype=float)
            # σ = (1/V) ∂(U - T S)/∂ε = σ_U - T (1/V) ∂S/∂ε.
            self.results["stress"] = stress_U - T * self.entropy_strain_derivative(atoms)

    def entropy_strain_derivative(self, atoms: Atoms) -> np.ndarray:
        """(1/V) ∂S_vib/∂ε in Voigt order (xx, yy, zz, yz, xz, xy), eV/K/Å³, shape (6,)
        (:meth:`EntropyPredictor.entropy_strain_derivative`: analytic where the descriptor
        has a strain gradient, else central differences)."""
        return self.predictor.entropy_strain_derivative(atoms)


def store_entropy_results(
    atoms: Atoms, calc: VibEntropyCalculator | None = None, local: bool = True
) -> dict[str, Any]:
    """Copy the entropy results of ``calc`` (default ``atoms.calc``) into ``atoms``.

    ASE's extxyz writer and ``ase.db`` keep ``atoms.info`` and ``atoms.arrays`` but drop calculator
    properties they do not know, so call this before writing. Missing values are computed
    (cached results are reused).

    Keys written: ``atoms.info['vibrational_entropy']`` (eV/K), ``['vibrational_entropy_std']``
    (eV/K), ``['vibrational_free_energy']`` (-T S_vib, eV), ``['formation_entropy']`` and
    ``['formation_entropy_std']`` (eV/K, only when the calculator has a bulk reference), ``['entropy_temperature']`` (K), and
    ``atoms.arrays['local_entropies']`` ((N,) eV/K, unless ``local=False``).

    Returns
    -------
    dict
        The stored values by key.
    """
    if calc is None:
        calc = atoms.calc
    if not isinstance(calc, VibEntropyCalculator):
        raise TypeError(
            "store_entropy_results needs a VibEntropyCalculator (attached to atoms or passed as "
            f"calc=), got {type(calc).__name__}"
        )
    stored: dict[str, Any] = {}
    for key in ("vibrational_entropy", "vibrational_entropy_std", "vibrational_free_energy",
                "formation_entropy", "formation_entropy_std"):
        if key in calc.implemented_properties:
            stored[key] = float(calc.get_property(key, atoms))
    stored["entropy_temperature"] = calc.temperature
    atoms.info.update(stored)
    if local and "local_entropies" in calc.implemented_properties:
        values = np.asarray(calc.get_property("local_entropies", atoms), dtype=float)
        atoms.arrays["local_entropies"] = values.copy()
        stored["local_entropies"] = values
    return stored


#: ``atoms.info`` keys written by :func:`store_entropy_results` (scalars).
INFO_KEYS = (
    "vibrational_entropy",
    "vibrational_entropy_std",
    "vibrational_free_energy",
    "formation_entropy",
    "formation_entropy_std",
    "entropy_temperature",
)


def entropy_db_entries(atoms: Atoms, calc: VibEntropyCalculator | None = None) -> dict[str, dict[str, Any]]:
    """Key-value pairs and data for ``ase.db``, which stores neither ``info`` nor custom arrays.

    Usage: ``db.write(atoms, **entropy_db_entries(atoms))``; read back with
    ``row.vibrational_entropy`` (eV/K) and ``row.data["local_entropies"]`` ((N,) eV/K). Values
    are taken from ``atoms.info`` / ``atoms.arrays`` when :func:`store_entropy_results` already
    put them there, otherwise computed with ``calc`` (default ``atoms.calc``) and stored first.

    Returns
    -------
    dict
        ``{"key_value_pairs": {key: float}, "data": {"local_entropies": (N,) array}}`` (no
        local entropies for a formation-only model, which does not define them).
    """
    if "entropy_temperature" not in atoms.info:
        store_entropy_results(atoms, calc)
    pairs = {key: float(atoms.info[key]) for key in INFO_KEYS if key in atoms.info}
    data = {}
    if "local_entropies" in atoms.arrays:
        data["local_entropies"] = np.asarray(atoms.arrays["local_entropies"], dtype=float)
    return {"key_value_pairs": pairs, "data": data}
