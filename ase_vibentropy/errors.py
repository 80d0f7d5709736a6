"""Exception hierarchy of ase-vibentropy.

Every error the package raises on bad input derives from :class:`VibEntropyError`, says what
was wrong and what to do, and also derives from the closest built-in type (``ValueError``,
``ImportError``, ...) so generic ``except`` clauses keep working. The CLI prints the message of
any :class:`VibEntropyError` as one line on stderr and exits non-zero.
"""

from __future__ import annotations


class VibEntropyError(Exception):
    """Base class of every error raised by ase-vibentropy on bad input or unmet assumptions."""


class InvalidStructureError(VibEntropyError, ValueError):
    """The ``Atoms`` object cannot be used: NaN positions, overlapping atoms, no cell, ..."""


class StructureFileError(VibEntropyError, ValueError):
    """A structure file is missing, empty, a directory, or in a format ase.io cannot read."""


class NotRelaxedError(VibEntropyError, ValueError):
    """Residual forces exceed the tolerance: the harmonic formulas assume a minimum.

    Attributes
    ----------
    max_force : float
        Largest residual force norm, eV/Å.
    fmax : float
        Tolerance that was exceeded, eV/Å.
    """

    def __init__(self, message: str, max_force: float = float("nan"), fmax: float = float("nan")):
        super().__init__(message)
        self.max_force = max_force
        self.fmax = fmax


class NotAMinimumError(VibEntropyError, ValueError):
    """The Hessian has negative eigenvalues beyond numerical noise (a saddle or a maximum).

    Attributes
    ----------
    n_imaginary : int
        Number of modes with ω² < -tolerance.
    min_omega2 : float
        Most negative ω², eV/(Å² amu).
    """

    def __init__(self, message: str, n_imaginary: int = 0, min_omega2: float = float("nan")):
        super().__init__(message)
        self.n_imaginary = n_imaginary
        self.min_omega2 = min_omega2


class NotAFirstOrderSaddleError(VibEntropyError, ValueError):
    """A structure passed as a first-order saddle does not have exactly one negative ω².

    Attributes
    ----------
    n_negative : int
        Number of modes with ω² < -tolerance (outside the zero modes); a lower bound when
        the sparse route stopped counting.
    min_omega2 : float
        Most negative (or, with none negative, smallest) ω² outside the zero modes,
        eV/(Å² amu).
    """

    def __init__(self, message: str, n_negative: int = 0, min_omega2: float = float("nan")):
        super().__init__(message)
        self.n_negative = n_negative
        self.min_omega2 = min_omega2


class SaddleIsMinimumError(NotAFirstOrderSaddleError):
    """No negative ω² at all: the structure passed as a saddle is a minimum."""


class HigherOrderSaddleError(NotAFirstOrderSaddleError):
    """Two or more negative ω²: a higher-order saddle (or a maximum), not a transition state."""


class ZeroModeError(VibEntropyError, ValueError):
    """The number of ~zero modes differs from the expected 3 (periodic), 6 or 5 (isolated)."""


class CellMismatchError(VibEntropyError, ValueError):
    """Defect and bulk cells differ, or a cell is not a supercell of the stated lattice."""


class EmbeddingNotApplicableError(VibEntropyError, ValueError):
    """The embedding solver does not apply to this cell; the message says why and what to use."""


class EmbeddingCellTooSmallError(EmbeddingNotApplicableError):
    """The cell is not larger than twice the range of the Hessian's couplings."""


class DelocalisedDefectError(EmbeddingNotApplicableError):
    """The damage is spread through the cell (or absent): not a localised point defect."""


class NoLatticeReferenceError(EmbeddingNotApplicableError):
    """No perfect-lattice reference can be built for the cell (not cubic, not n a0, ...)."""


class UnknownNameError(VibEntropyError, ValueError):
    """A name (potential, Hessian source, solver, descriptor, model) is not known.

    The message lists the known names.
    """


class RetiredPotentialError(UnknownNameError):
    """A potential name that is no longer served; the message names the replacement.

    Attributes
    ----------
    name : str
        The retired name.
    replacement : str
        The potential to use instead.
    """

    def __init__(self, message: str, name: str, replacement: str):
        super().__init__(message)
        self.name = name
        self.replacement = replacement


class PotentialSpecError(UnknownNameError):
    """A user potential spec is malformed, names a missing file or an unusable calculator."""


class NoisyPotentialError(VibEntropyError, ValueError):
    """A potential's Hessians are too noisy for harmonic entropies (the Hessian-noise screen)."""


class MissingDependencyError(VibEntropyError, ImportError):
    """An optional dependency is needed; the message gives the ``pip install`` that provides it."""


class DescriptorError(VibEntropyError, ValueError):
    """Descriptor parameters out of range, or a species the provider was not configured for."""


class ModelFileError(VibEntropyError, ValueError):
    """A model file is missing, truncated or corrupt, or cannot be written where asked."""


class ModelVersionError(ModelFileError):
    """A model file was written by a newer format version than this package reads."""


class DescriptorMismatchError(ModelFileError):
    """A model's stored descriptor hash does not match the descriptor rebuilt from its parameters."""


class ModelDomainError(VibEntropyError, ValueError):
    """A structure the model cannot handle at all (element unknown to the model, ...)."""


class RecipeError(VibEntropyError, ValueError):
    """A database recipe (TOML) is invalid; the message names the offending field."""


class DatabaseError(VibEntropyError, ValueError):
    """A database cannot be used (not writable, no labelled rows, ...)."""


class MixedPotentialError(DatabaseError):
    """Training rows labelled with different reference potentials; the message says how to
    relabel them onto one."""

class GenerationInterrupted(VibEntropyError):
    """A database run was stopped (Ctrl-C); every finished job is in the database and the same
    command resumes. ``n_done`` and ``n_jobs`` count the recipe's finished and total jobs."""

    def __init__(self, message: str, n_done: int, n_jobs: int):
        super().__init__(message)
        self.n_done = n_done
        self.n_jobs = n_jobs


class InvalidOptionError(VibEntropyError, ValueError):
    """An option value out of range, or options that cannot be combined (the message says which)."""


class DomainError(VibEntropyError, ValueError):
    """A domain warning turned into an error (``vibentropy predict --strict``)."""


class SupersededLabelsWarning(UserWarning):
    """A model trained on labels of a retired or superseded reference potential is predicting."""
