"""Exploration of defect energy landscapes: random placement + quench, and activation-relaxation.

The activation-relaxation explorer follows the ARTn idea the paper used, with ASE's
dimer method (:mod:`ase.mep.dimer`): from a known minimum, push a few atoms of the defect
region, climb to a saddle point along the lowest-curvature mode, step over it, relax to the
next minimum, and keep it if it is new (energy and inertia fingerprint, see
:mod:`.analysis`). Every random choice comes from one ``numpy.random.Generator``, so a seed
fixes the whole exploration.

Saddles are kept as jumps between two of the minima: to a new minimum, to one found before, or
to a symmetry copy of the minimum the search left (a vacancy hop: the same configuration with
atoms moved by more than :data:`JUMP_DISPLACEMENT_A`). On request each saddle's connection is
checked by quenching its near side too, and a climbing-image NEB between the two minima adds
the saddle of the minimum-energy path (:func:`~ase_vibentropy.harmonic.saddle.climbing_band`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.mep.dimer import DimerControl, MinModeAtoms, MinModeTranslate
from ase.optimize import FIRE

from ..errors import InvalidOptionError, InvalidStructureError, NotRelaxedError
from ..harmonic import relax_positions
from .analysis import (
    ENERGY_TOLERANCE_EV,
    FINGERPRINT_RTOL,
    inertia_fingerprint,
    same_configuration,
    wigner_seitz,
)
from .builders import random_points_with_clearance, minimum_image

#: Residual force, eV/Å, to which the explorer quenches its minima (the labelling step relaxes
#: further with the reference potential).
QUENCH_FMAX_EV_PER_A = 1e-3

#: Largest atomic displacement, Å, between two quenched structures that still counts as the same
#: minimum: beyond it, an equivalent configuration is a jump (bcc Fe vacancy hop: 2.48 Å).
JUMP_DISPLACEMENT_A = 0.5


def quench(atoms: Atoms, calc: Any, fmax: float = QUENCH_FMAX_EV_PER_A, steps: int = 5000) -> Atoms:
    """Relax positions at fixed cell: FIRE to 0.05 eV/Å (robust from rough starts), then L-BFGS
    (no dense 3N × 3N inverse Hessian, so it scales to thousands of atoms).

    Returns a relaxed copy with ``calc`` attached; raises :class:`NotRelaxedError` when the
    forces stay above ``fmax`` eV/Å after ``steps`` steps of each optimizer.
    """
    work = atoms.copy()
    work.calc = calc
    FIRE(work, logfile=None).run(fmax=max(fmax, 0.05), steps=steps)
    return relax_positions(work, calc, fmax=fmax, optimizer="LBFGS", steps=steps)


def random_placement(
    reference: Atoms,
    n_interstitials: int,
    n_vacancies: int,
    rng: np.random.Generator,
    radius: float | None = None,
    clearance: float | None = None,
) -> Atoms:
    """Random defect cluster: remove ``n_vacancies`` random sites and insert ``n_interstitials``
    atoms at random points, all within ``radius`` Å of the cell centre (default: 1.5 conventional
    cells' worth, (8 V/N)^(1/3)). Inserted atoms keep ``clearance`` Å (default 0.6 of the mean
    interatomic distance) from every site. Quench the result to get a minimum.

    Returns
    -------
    Atoms
        N - n_vacancies + n_interstitials atoms, inserted atoms last.
    """
    cell = np.asarray(reference.cell)
    lengths = np.diag(cell)
    spacing = np.cbrt(reference.get_volume() / len(reference))
    radius = 2.0 * spacing if radius is None else float(radius)
    clearance = 0.6 * spacing if clearance is None else float(clearance)
    centre = lengths / 2.0
    distance = np.linalg.norm(minimum_image(reference.positions - centre, cell), axis=1)
    inside = np.flatnonzero(distance < radius)
    if n_vacancies > len(inside):
        raise InvalidStructureError(
            f"only {len(inside)} sites lie within {radius:.2f} Å of the centre, cannot remove "
            f"{n_vacancies}: raise the placement radius"
        )
    keep = np.ones(len(reference), dtype=bool)
    keep[rng.choice(inside, size=n_vacancies, replace=False)] = False
    result = reference[keep]
    if n_interstitials:

        def in_sphere(g: np.random.Generator, k: int) -> np.ndarray:
            direction = g.normal(size=(k, 3))
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            return centre + direction * (radius * np.cbrt(g.random(k)))[:, None]

        points = random_points_with_clearance(
            n_interstitials, reference.positions, cell, rng, clearance, in_sphere
        )
        result += Atoms([reference[0].symbol] * n_interstitials, positions=points)
    result.wrap()
    return result


@dataclass(frozen=True)
class Minimum:
    """One relaxed configuration found by an explorer.

    Attributes
    ----------
    atoms : Atoms
        Relaxed structure (no calculator attached).
    energy : float
        Potential energy, eV.
    fingerprint : float or None
        Inertia fingerprint Σ λ², Å⁴ (None without interstitials).
    n_vacancies, n_interstitials : int
        Wigner-Seitz counts.
    barrier : float
        Saddle energy minus the energy of the minimum it was reached from, eV (NaN for the
        starting minimum). The saddle is the dimer's, before any check of its near side: a
        minimum is kept even when that saddle is not (``n_unconnected``).
    parent : int
        Index of that minimum in the exploration (-1 for the start).
    """

    atoms: Atoms
    energy: float
    fingerprint: float | None
    n_vacancies: int
    n_interstitials: int
    barrier: float = float("nan")
    parent: int = -1


@dataclass
class Saddle:
    """A saddle the explorer crossed between two of its distinct minima.

    Attributes
    ----------
    atoms : Atoms
        The dimer's converged saddle (to the dimer's force tolerance; refine it before labelling).
    energy : float
        eV.
    origin, target : int
        Indices in :attr:`ExplorationResult.minima` of the minimum it was reached from and of the
        minimum on its far side (new, found before, or ``origin`` itself for a jump to a
        symmetry copy of it).
    search : str
        ``"dimer"`` (the explorer's search) or ``"neb"`` (the highest image of a climbing-image
        band between the two minima).
    """

    atoms: Atoms
    energy: float
    origin: int
    target: int
    search: str = "dimer"


@dataclass
class ExplorationResult:
    """Distinct minima of one exploration, the saddles that connect them, and what happened to
    the other attempts."""

    minima: list[Minimum] = field(default_factory=list)
    saddles: list[Saddle] = field(default_factory=list)
    n_events: int = 0
    n_saddles: int = 0
    n_failed: int = 0
    n_known: int = 0
    n_unconnected: int = 0
    n_bands: int = 0

    def summary(self) -> dict[str, int]:
        """Counts of events, converged saddles, failed searches, re-found minima, saddles whose
        near side did not quench to the minimum left, and NEB bands run."""
        return {
            "n_minima": len(self.minima),
            "n_events": self.n_events,
            "n_saddles": self.n_saddles,
            "n_failed": self.n_failed,
            "n_known": self.n_known,
            "n_unconnected": self.n_unconnected,
            "n_bands": self.n_bands,
        }


def describe_minimum(atoms: Atoms, reference: Atoms, energy: float, **extra: Any) -> Minimum:
    """Wrap a relaxed structure as a :class:`Minimum` (Wigner-Seitz counts and fingerprint)."""
    ws = wigner_seitz(atoms, reference)
    plain = atoms.copy()
    plain.calc = None
    return Minimum(
        atoms=plain,
        energy=float(energy),
        fingerprint=inertia_fingerprint(atoms, reference, ws),
        n_vacancies=ws.n_vacancies,
        n_interstitials=ws.n_interstitials,
        **extra,
    )


class ActivationRelaxationExplorer:
    """Activation-relaxation exploration with ASE's dimer method.

    Parameters
    ----------
    calc
        ASE calculator for energies and forces (one instance, reused).
    reference
        Perfect lattice filling the same cell (Wigner-Seitz sites), e.g. the strained bulk.
    rng
        Random generator: which minimum to leave, which atoms to push, the push itself.
    push_radius
        Atoms within this distance, Å, of a random defect atom are pushed (default: 1.2 × the
        mean interatomic distance, i.e. the defect atom and its first shell).
    push_amplitude
        Norm of the whole initial push, Å.
    step_over
        Length of the step along the saddle's unstable mode, Å, towards the far side.
    dimer_fmax, dimer_steps
        Saddle convergence, eV/Å, and the largest number of dimer translation steps.
    fmax
        Force criterion of the quench to the next minimum, eV/Å.
    energy_tol, fingerprint_rtol
        De-duplication tolerances (eV; relative).
    verify_saddles
        Quench each saddle's near side as well and keep the saddle only if it returns to the
        minimum the search left (one more quench per event; minima are unaffected).
    neb_images
        Interior images of a climbing-image NEB between the two minima of each kept saddle
        (0: no band). A band that is one elementary jump adds its highest image as a saddle of
        ``search="neb"`` (refine it before labelling); the same jump at the same energy counts
        once.
    neb_calculator
        Makes one calculator per NEB image (required with ``neb_images``).
    stall_events
        Stop after this many consecutive events that added neither a minimum nor a saddle (0:
        never; a single vacancy, whose jumps all lead to copies of itself, stops this way).
    """

    def __init__(
        self,
        calc: Any,
        reference: Atoms,
        rng: np.random.Generator,
        push_radius: float | None = None,
        push_amplitude: float = 0.4,
        step_over: float = 0.3,
        dimer_fmax: float = 0.02,
        dimer_steps: int = 400,
        fmax: float = QUENCH_FMAX_EV_PER_A,
        energy_tol: float = ENERGY_TOLERANCE_EV,
        fingerprint_rtol: float = FINGERPRINT_RTOL,
        verify_saddles: bool = False,
        neb_images: int = 0,
        neb_calculator: Callable[[], Any] | None = None,
        stall_events: int = 0,
    ):
        if neb_images and neb_calculator is None:
            raise ValueError("neb_images needs neb_calculator, a factory of one calculator per image")
        self.calc = calc
        self.reference = reference
        self.rng = rng
        spacing = np.cbrt(reference.get_volume() / len(reference))
        self.push_radius = 1.2 * spacing if push_radius is None else float(push_radius)
        self.push_amplitude = float(push_amplitude)
        self.step_over = float(step_over)
        self.dimer_fmax = float(dimer_fmax)
        self.dimer_steps = int(dimer_steps)
        self.fmax = float(fmax)
        self.energy_tol = float(energy_tol)
        self.fingerprint_rtol = float(fingerprint_rtol)
        self.verify_saddles = bool(verify_saddles)
        self.neb_images = int(neb_images)
        self.neb_calculator = neb_calculator
        self.stall_events = int(stall_events)

    def _defect_atoms(self, atoms: Atoms) -> np.ndarray:
        """Atoms of the defect region: those in multiply occupied Wigner-Seitz cells, or the
        first-shell neighbours of the vacancies when there are no interstitials."""
        ws = wigner_seitz(atoms, self.reference)
        if len(ws.defect_atoms):
            return ws.defect_atoms
        if ws.n_vacancies == 0:
            return np.arange(len(atoms))
        # Distance of every atom to its nearest vacancy, (N, n_vac) minimum image.
        d = np.linalg.norm(
            minimum_image(atoms.positions[:, None, :] - ws.vacancy_positions[None, :, :], atoms.cell),
            axis=2,
        ).min(axis=1)
        return np.flatnonzero(d <= d.min() + 0.1)

    def push_vector(self, atoms: Atoms) -> np.ndarray:
        """Random initial push (N, 3), Å, of norm ``push_amplitude`` on the atoms within
        ``push_radius`` of one random defect atom."""
        candidates = self._defect_atoms(atoms)
        centre = atoms.positions[candidates[self.rng.integers(len(candidates))]]
        distance = np.linalg.norm(minimum_image(atoms.positions - centre, atoms.cell), axis=1)
        region = distance <= self.push_radius
        push = np.zeros((len(atoms), 3))
        push[region] = self.rng.normal(size=(int(region.sum()), 3))
        return push * (self.push_amplitude / np.linalg.norm(push))

    def find_saddle(self, minimum: Atoms) -> tuple[Atoms, np.ndarray, float] | None:
        """Dimer search from a pushed copy of ``minimum``.

        Returns the saddle (Atoms), its unstable mode (N, 3, unit norm) and its energy (eV), or
        None when the search did not converge to a point of negative curvature.
        """
        work = minimum.copy()
        work.calc = self.calc
        control = DimerControl(
            logfile=None,
            initial_eigenmode_method="displacement",
            displacement_method="vector",
            maximum_translation=0.1,
            max_num_rot=2,
        )
        dimer_atoms = MinModeAtoms(work, control, random_seed=int(self.rng.integers(2**31 - 1)), logfile=None)
        push = self.push_vector(minimum)
        moved = (np.abs(push) > 0).any(axis=1).tolist()
        dimer_atoms.displace(displacement_vector=push, mask=moved, log=False)
        search = MinModeTranslate(dimer_atoms, logfile=None, trajectory=None)
        try:
            search.run(fmax=self.dimer_fmax, steps=self.dimer_steps)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            return None
        forces = work.get_forces()
        converged = float(np.sqrt((forces**2).sum(axis=1)).max()) <= self.dimer_fmax
        if not converged or not dimer_atoms.get_curvature() < 0:
            return None
        mode = np.asarray(dimer_atoms.get_eigenmode(), dtype=np.float64).reshape(len(work), 3)
        saddle = work.copy()
        saddle.calc = None
        return saddle, mode / np.linalg.norm(mode), float(work.get_potential_energy())

    def _known_index(self, candidate: Minimum, known: list[Minimum]) -> int | None:
        """Index of the minimum in ``known`` that ``candidate`` repeats, or None."""
        for index, m in enumerate(known):
            if same_configuration(candidate.energy, candidate.fingerprint, m.energy, m.fingerprint,
                                  self.energy_tol, self.fingerprint_rtol):
                return index
        return None

    def _add_saddle(self, result: ExplorationResult, saddle: Saddle) -> bool:
        """Keep ``saddle`` unless one between the same two minima at the same energy (within
        the de-duplication tolerance) is kept already: the same jump found twice. True if kept."""
        ends = {saddle.origin, saddle.target}
        if any({kept.origin, kept.target} == ends and abs(kept.energy - saddle.energy) <= self.energy_tol
               for kept in result.saddles):
            return False
        result.saddles.append(saddle)
        return True

    def _same_minimum(self, a: Atoms, b: Atoms) -> bool:
        """True when two quenched structures are the same minimum, not copies: every atom within
        :data:`JUMP_DISPLACEMENT_A` (minimum image) once the rigid drift of the whole content (the
        median displacement; dimer steps do not conserve the centre of mass) is taken out."""
        shift = minimum_image(a.positions - b.positions, a.cell)
        shift = minimum_image(shift - np.median(shift, axis=0), a.cell)
        return float(np.sqrt((shift**2).sum(axis=1)).max()) <= JUMP_DISPLACEMENT_A

    def _quench_side(self, saddle: Atoms, mode: np.ndarray, sign: float) -> Atoms | None:
        """Quench from one step along ``sign`` × the unstable mode (None when it fails)."""
        side = saddle.copy()
        side.positions += sign * self.step_over * mode
        try:
            return quench(side, self.calc, self.fmax)
        except NotRelaxedError:
            return None

    def _band_saddle(self, initial: Atoms, final: Atoms, origin: int, target: int) -> Saddle | None:
        """The highest image of a converged climbing-image band from ``initial`` to ``final``
        when the band is one elementary jump (no intermediate minimum) with a barrier above both
        ends (more than the de-duplication tolerance), else None."""
        from ..harmonic.saddle import band_segments, climbing_band

        images, converged = climbing_band(initial, final, self.neb_calculator, n_images=self.neb_images,
                                          fmax=self.dimer_fmax)
        if not converged:
            return None
        energies = np.array([image.get_potential_energy() for image in images])
        try:
            segments = band_segments(energies)
        except InvalidOptionError:  # two neighbouring minima on the band: no resolved jump
            return None
        if len(segments) != 1:
            return None
        top = int(segments[0][1])
        if energies[top] - max(energies[0], energies[-1]) <= self.energy_tol:
            return None  # no barrier resolved on the band (a shallow end point)
        top_atoms = images[top].copy()
        top_atoms.calc = None
        return Saddle(top_atoms, float(energies[top]), origin, target, search="neb")

    def explore(self, start: Atoms, n_minima: int, max_events: int | None = None,
                n_saddles: int = 0) -> ExplorationResult:
        """Collect up to ``n_minima`` distinct minima, starting from (and including) ``start``,
        and the saddles crossed between them.

        A saddle whose far side quenches to a minimum found before (other than the one it was
        reached from) is kept too, as is one whose far side is a moved copy of the minimum it
        was reached from (a symmetric jump, ``target == origin``).

        Parameters
        ----------
        start
            Starting configuration; quenched first.
        n_minima
            Distinct minima wanted (the start counts as one).
        max_events
            Largest number of activation events (default 4 × (n_minima + n_saddles)).
        n_saddles
            Keep exploring, up to ``max_events``, until this many distinct saddles are kept
            as well (0: stop at ``n_minima`` minima).

        Returns
        -------
        ExplorationResult
            The minima in discovery order, the saddles and the event counts.
        """
        max_events = 4 * (n_minima + n_saddles) if max_events is None else int(max_events)
        relaxed = quench(start, self.calc, self.fmax)
        result = ExplorationResult()
        result.minima.append(describe_minimum(relaxed, self.reference, relaxed.get_potential_energy()))
        idle = 0
        while ((len(result.minima) < n_minima or len(result.saddles) < n_saddles)
               and result.n_events < max_events
               and not (self.stall_events and idle >= self.stall_events)):
            result.n_events += 1
            idle += 1
            parent = int(self.rng.integers(len(result.minima)))
            origin = result.minima[parent]
            found = self.find_saddle(origin.atoms)
            if found is None:
                result.n_failed += 1
                continue
            saddle, mode, saddle_energy = found
            result.n_saddles += 1
            # Step over the saddle away from the minimum it was reached from.
            away = minimum_image(saddle.positions - origin.atoms.positions, saddle.cell)
            sign = 1.0 if np.vdot(away, mode) >= 0 else -1.0
            new = self._quench_side(saddle, mode, sign)
            if new is None:
                result.n_failed += 1
                continue
            candidate = describe_minimum(
                new, self.reference, new.get_potential_energy(),
                barrier=saddle_energy - origin.energy, parent=parent,
            )
            known = self._known_index(candidate, result.minima)
            if known is None:
                result.minima.append(candidate)
                target = len(result.minima) - 1
                idle = 0
            else:
                result.n_known += 1
                target = known
                if known == parent and self._same_minimum(new, origin.atoms):
                    continue  # back where it started: no jump
            if self.verify_saddles:
                near = self._quench_side(saddle, mode, -sign)
                if near is None or not self._same_minimum(near, origin.atoms):
                    result.n_unconnected += 1
                    continue
            if not self._add_saddle(result, Saddle(saddle, saddle_energy, parent, target)):
                continue  # a jump found before: its band, if asked for, was run then
            idle = 0
            if self.neb_images:
                result.n_bands += 1
                band = self._band_saddle(origin.atoms, new, parent, target)
                if band is not None:
                    self._add_saddle(result, band)
        return result


def explore_random(
    reference: Atoms,
    calc: Any,
    n_interstitials: int,
    n_vacancies: int,
    rng: np.random.Generator,
    n_minima: int,
    max_trials: int | None = None,
    radius: float | None = None,
    fmax: float = QUENCH_FMAX_EV_PER_A,
    energy_tol: float = ENERGY_TOLERANCE_EV,
    fingerprint_rtol: float = FINGERPRINT_RTOL,
) -> ExplorationResult:
    """Random placement followed by a quench, repeated until ``n_minima`` distinct minima.

    Each trial builds :func:`random_placement` and quenches it; duplicates (energy and
    fingerprint) and failed quenches are counted, not kept.
    """
    max_trials = 4 * n_minima if max_trials is None else int(max_trials)
    result = ExplorationResult()
    while len(result.minima) < n_minima and result.n_events < max_trials:
        result.n_events += 1
        start = random_placement(reference, n_interstitials, n_vacancies, rng, radius=radius)
        try:
            relaxed = quench(start, calc, fmax)
        except NotRelaxedError:
            result.n_failed += 1
            continue
        candidate = describe_minimum(relaxed, reference, relaxed.get_potential_energy())
        if any(
            same_configuration(candidate.energy, candidate.fingerprint, m.energy, m.fingerprint,
                               energy_tol, fingerprint_rtol)
            for m in result.minima
        ):
            result.n_known += 1
            continue
        result.minima.append(candidate)
    return result
