"""Where a model's prediction can be trusted: the checks the calculator and the CLI share.

A harmonic entropy is defined at a minimum, a linear model interpolates between its training
rows, and a formation entropy compares a cell with the perfect lattice filling the same cell.
Each check here returns the message of one warning (or None), or raises for input that is
simply wrong, so that :class:`~ase_vibentropy.calculator.VibEntropyCalculator` (Python
warnings) and ``vibentropy predict`` (one stderr line each, errors with ``--strict``) say the
same thing in the same cases.

* :func:`residual_force_message`: the largest force exceeds ``fmax`` (eV/Å);
* :func:`uncertainty_message`: the predictive standard deviation exceeds a threshold (k_B);
* :func:`training_domain_messages`: the cell is smaller or larger than every training cell,
  its strain against the model's lattice lies outside the training strains, or two of its atoms
  are closer than any two atoms of a training structure (by more than :data:`DISTANCE_MARGIN`);
* :func:`check_reference_lattice`, :func:`check_lattice_constant`: the perfect lattice built
  for S_f has a site count far from the structure's atom count, or the lattice constant given
  is far from the model's (a wrong ``--a0``): errors.
* :func:`force_calculator_for`: the model's own labelling potential, when it can compute forces
  on this install (for the force check of a structure without a force calculator).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from .errors import CellMismatchError, MissingDependencyError, UnknownNameError

#: Atoms per conventional cubic cell of each lattice.
_BASIS_ATOMS = {"sc": 1, "bcc": 2, "fcc": 4}

#: Default thresholds (the calculator's ``std_warning_kB`` and ``fmax_warning``).
STD_WARNING_KB = 3.0
FMAX_WARNING_EV_PER_A = 0.05
#: Strain margin beyond the training strains before a structure counts as outside them.
STRAIN_MARGIN = 0.005
#: Fraction of the training structures' shortest interatomic distance by which a structure's
#: shortest distance may fall below it before it counts as outside them (0.1 Å for bcc Fe's
#: 2.0 Å dumbbells; strains of the training range move distances by about 1 %).
DISTANCE_MARGIN = 0.05
#: Largest relative difference |N_d - N_b| / N_b accepted between a structure and its perfect
#: lattice reference (point defects and Frenkel damage change the count by a few per cent).
MAX_SITE_MISMATCH = 0.10
#: A lattice constant that implies more than this strain against the model's is a mistake.
MAX_IMPLIED_STRAIN = 0.10


class DomainWarning(UserWarning):
    """The structure lies outside the domain where the model's entropy can be trusted."""


class HighUncertaintyWarning(DomainWarning):
    """The model's predictive standard deviation exceeds the threshold."""


class FarFromMinimumWarning(DomainWarning):
    """Residual forces are large: the harmonic entropy is defined at a minimum only."""


class OutsideTrainingDomainWarning(DomainWarning):
    """Cell size, strain or shortest interatomic distance outside those of the model's
    training rows."""


def residual_force_message(forces: np.ndarray, fmax: float | None) -> str | None:
    """The warning for residual forces (N, 3) eV/Å above ``fmax`` eV/Å, or None."""
    if fmax is None or len(forces) == 0:
        return None
    from .harmonic.relax import largest_force

    largest = largest_force(forces)
    if largest <= fmax:
        return None
    return (
        f"largest force {largest:.3g} eV/Å exceeds fmax_warning={fmax} eV/Å: the harmonic "
        "entropy is defined at a minimum, so this value is only indicative (relax the structure "
        "first, or set fmax_warning=None to silence)"
    )


def uncertainty_message(what: str, std_kB: float, threshold_kB: float | None) -> str | None:
    """The warning for a predictive standard deviation ``std_kB`` of ``what`` above the threshold."""
    if threshold_kB is None or not std_kB > threshold_kB:
        return None
    return (
        f"predictive standard deviation of {what} is {std_kB:.3g} k_B > std_warning_kB="
        f"{threshold_kB} k_B: the structure is far from the model's training data, so the "
        "prediction is unreliable (check it against the harmonic reference)"
    )


def _periodic_cubic_edge(atoms: Atoms) -> float | None:
    """Edge of a periodic cubic cell, Å (:func:`ase_vibentropy.harmonic.bulk.cubic_cell_edge`),
    or None for any other cell."""
    from .harmonic.bulk import cubic_cell_edge

    if atoms.cell.rank != 3 or not atoms.pbc.all():
        return None
    try:
        return cubic_cell_edge(atoms)
    except CellMismatchError:
        return None


def training_domain_messages(model: Any, atoms: Atoms) -> list[str]:
    """Warnings for a structure outside the cell sizes, strains or neighbour distances of the
    model's training rows.

    Uses the ``n_atoms_range``, ``strain_range`` and ``min_distance_range_A`` of the model's
    training summary and its lattice constant. A check whose record a model file lacks (files
    written before strains, or shortest distances, were recorded) is not made for that model.
    The distance check warns when two atoms (or periodic images) are closer than (1 -
    :data:`DISTANCE_MARGIN`) times the shortest interatomic distance of any training structure, Å.
    """
    summary = getattr(model, "training_summary_", {}) or {}
    messages = []
    sizes = summary.get("n_atoms_range")
    if sizes and not (0.5 * sizes[0] <= len(atoms) <= 2.0 * sizes[1]):
        messages.append(
            f"{len(atoms)} atoms: far outside the training cells ({sizes[0]}-{sizes[1]} atoms); "
            "extensive descriptors extrapolate, but check a few values against the exact route"
        )
    strains, a0 = summary.get("strain_range"), getattr(model, "a0", None)
    n_basis = _BASIS_ATOMS.get(getattr(model, "lattice", None))
    edge = _periodic_cubic_edge(atoms)
    if strains and a0 and n_basis and edge is not None:
        # cells per edge from the atom count (point defects change it by a few per cent),
        # not from edge / a0, which wraps large strains onto a neighbouring cell count
        n_cells = max(1, round((len(atoms) / n_basis) ** (1.0 / 3.0)))
        strain = edge / (n_cells * a0) - 1.0
        low, high = strains[0] - STRAIN_MARGIN, strains[1] + STRAIN_MARGIN
        if not low <= strain <= high:
            messages.append(
                f"the cell is strained by {100 * strain:+.2f} % against the model's lattice "
                f"(a0 = {a0} Å), outside its training strains {100 * strains[0]:+.1f}.."
                f"{100 * strains[1]:+.1f} %"
            )
    message = _short_distance_message(summary.get("min_distance_range_A"), atoms)
    if message:
        messages.append(message)
    return messages


def _short_distance_message(distances: list[float] | None, atoms: Atoms) -> str | None:
    """The warning for two atoms closer than the training structures' shortest distance
    ``distances[0]`` Å (less :data:`DISTANCE_MARGIN`), or None (also without the record)."""
    from .structure import closest_pair

    if not distances:
        return None
    threshold = (1.0 - DISTANCE_MARGIN) * distances[0]
    closest, (i, j) = closest_pair(atoms, probe=threshold)  # searches below the threshold only
    if not closest < threshold:
        return None
    return (
        f"atoms {i} and {j} are {closest:.3f} Å apart, closer than in any training structure "
        f"(shortest {distances[0]:.3f} Å, warning below {threshold:.3f} Å): the local "
        "environment is outside the model's training data (relax the structure, or check it "
        "against the harmonic reference)"
    )


def check_reference_lattice(atoms: Atoms, bulk: Atoms, max_site_mismatch: float = MAX_SITE_MISMATCH) -> None:
    """Refuse a perfect-lattice reference whose site count cannot be the structure's.

    Raises
    ------
    CellMismatchError
        |N_d - N_b| > ``max_site_mismatch`` N_b: the reference has far more or fewer sites than
        the structure has atoms (usually a wrong lattice constant or bulk file).
    """
    n_d, n_b = len(atoms), len(bulk)
    if abs(n_d - n_b) > max_site_mismatch * n_b:
        raise CellMismatchError(
            f"the perfect-lattice reference has {n_b} sites for a structure of {n_d} atoms "
            f"(|N_d - N_b| = {abs(n_d - n_b)} > {max_site_mismatch:.0%} of N_b): the lattice "
            "constant or the bulk file does not match the structure; check --a0 (or --bulk), or "
            "raise --max-site-mismatch if the structure really lacks or adds that many atoms"
        )


def check_lattice_constant(a0: float, model_a0: float | None) -> None:
    """Refuse a lattice constant (Å) that differs from the model's by more than
    :data:`MAX_IMPLIED_STRAIN`: the model knows that lattice at small strains only.

    Raises
    ------
    CellMismatchError
        With both numbers and the strain they imply.
    """
    if model_a0 is None:
        return
    strain = a0 / model_a0 - 1.0
    if abs(strain) > MAX_IMPLIED_STRAIN:
        raise CellMismatchError(
            f"--a0 {a0} Å implies a strain of {100 * strain:+.1f} % against the model's lattice "
            f"constant {model_a0} Å: give the lattice constant of the structure's own lattice "
            "(--a0 only chooses the number of cells per edge; the reference fills the cell)"
        )


def labelling_potential_for(model: Any) -> Any | None:
    """The built-in potential the model's labels were computed with, if this install has the
    same revision of it (:func:`ase_vibentropy.potentials.labelling_potential` in the training
    summary); None otherwise (an unknown, retired, user or other-revision potential)."""
    from .potentials import get_potential, labelling_potential

    identity = (getattr(model, "training_summary_", {}) or {}).get("potential")
    if not identity:
        return None
    try:
        potential = get_potential(str(identity).split("@")[0])
    except UnknownNameError:
        return None
    return potential if labelling_potential(potential.name, potential.version) == identity else None


def force_calculator_for(model: Any) -> Any | None:
    """A force calculator of the potential the model was trained on
    (:func:`labelling_potential_for`), or None when this install lacks it or its extras."""
    potential = labelling_potential_for(model)
    if potential is None:
        return None
    try:
        return potential.force_calculator()
    except MissingDependencyError:
        return None
