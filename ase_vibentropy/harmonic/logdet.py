"""Exact ln pdet(D) without diagonalisation (docs/theory.md).

For a periodic cell the null space of D = M^-1/2 H M^-1/2 is the three uniform translations
v_α (components sqrt(m_i) on direction α). Removing the three rows and columns of one atom j
leaves a matrix D_red that is positive definite at a minimum, and

    ln pdet(D) = ln det(D_red) + 3 ln(M_tot / m_j).

ln det(D_red) comes from a Cholesky-type factorisation: CHOLMOD (scikit-sparse) when it is
importable, otherwise scipy's SuperLU in symmetric mode without pivoting (an LDLᵀ in disguise,
so the signs of the pivots give the inertia: Sylvester's law), or LAPACK's dense Cholesky
when the matrix is too dense for a sparse factorisation to pay (EAM Hessians couple atoms up
to 2 r_c apart). For large cells whose atom positions are known, a one-level slab dissection
(two decoupled half-cells and the separator slabs between them, combined by a Schur
complement) does the dense Cholesky in about half the flops and a third of the memory.
A failed factorisation, or negative pivots, means "not a minimum".

At a first-order saddle D_red is indefinite (exactly one negative eigenvalue), so no Cholesky
applies directly. :func:`log_pdet_saddle` deflates the unstable mode: a Lanczos solver
(ARPACK) gives the most negative eigenpair (λ₋, u) of D, the factorised matrix is
C = D_red + α q qᵀ (q = u without the removed atom, α > |λ₋|), which is positive definite,
and the matrix determinant lemma det D_red = det C (1 - α qᵀ C⁻¹ q) is exact for any q.
The eigenvector only has to be good enough for C to be positive definite; its sign test
(1 - α qᵀ C⁻¹ q < 0 with C positive definite) proves that D has exactly one negative
eigenvalue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import reverse_cuthill_mckee

from ..errors import (
    InvalidOptionError,
    NotAFirstOrderSaddleError,
    NotAMinimumError,
    UnknownNameError,
)
from .hessian import HessianMatrix
from .spectrum import DEFAULT_ZERO_TOL, check_stationary_point, mass_weighted_hessian

#: Factorisation back ends of :func:`log_pdet`.
LOGDET_BACKENDS = ("auto", "cholmod", "splu", "dense-cholesky", "dissection")

#: Above this fraction of non-zero entries ``auto`` factorises densely: fill-in makes the sparse
#: factor of an EAM Hessian nearly full anyway (the Hessian couples atoms up to 2 r_c apart), and
#: LAPACK's blocked Cholesky runs at a far higher flop rate than SuperLU. Measured on bcc Fe
#: vacancy cells (1,023-1,999 atoms, 7-15 % non-zero) dense Cholesky wins throughout.
DENSE_FILL_FRACTION = 0.005

#: ``auto`` never densifies a matrix larger than this, bytes (float64).
DENSE_MAX_BYTES = 6e9

#: ``auto`` switches from one dense Cholesky to the slab dissection above this many degrees of
#: freedom, when positions are given. Measured on bcc Fe vacancy cells (2 cores): 0.28 s vs
#: 0.51 s at 1,023 atoms, 3.1 s vs 6.9 s at 3,455, 31 s vs 88 s at 8,191; in smaller cells the
#: separator is most of the cell.
DISSECTION_MIN_DOF = 3_000

#: The dissection gives up (and factorises densely) when the separator holds more than this
#: fraction of the atoms: the cell is too thin compared with the Hessian's coupling range.
DISSECTION_MAX_SEPARATOR = 0.5


@dataclass(frozen=True)
class LogDetResult:
    """Outcome of :func:`log_pdet`.

    Attributes
    ----------
    log_pdet : float
        Σ' ln ω² = ln pdet(D), ω² in eV/(Å² amu).
    n_modes : int
        Number of non-zero modes n' = 3N - 3.
    n_negative : int
        Negative eigenvalues of D: always 0 in a returned result (otherwise
        :class:`NotAMinimumError` is raised, with the count when SuperLU gives it).
    backend : str
        Factorisation used.
    removed_atom : int
        Atom whose rows and columns were removed.
    seconds : float
        Wall time of the factorisation, s.
    unstable_omega2 : float
        :func:`log_pdet_saddle` only: the negative ω² of the unstable mode, eV/(Å² amu)
        (excluded from ``log_pdet``); NaN at a minimum.
    """

    log_pdet: float
    n_modes: int
    n_negative: int
    backend: str
    removed_atom: int
    seconds: float
    unstable_omega2: float = float("nan")


def _have_cholmod() -> bool:
    try:
        import sksparse.cholmod  # noqa: F401
    except ImportError:
        return False
    return True


def reduced_dynamical_matrix(
    hessian: HessianMatrix, masses: np.ndarray, atom: int
) -> sp.csc_matrix:
    """D with the 3 rows and columns of ``atom`` removed, eV/(Å² amu), sparse (3N-3, 3N-3)."""
    d = mass_weighted_hessian(sp.csr_matrix(hessian), masses)
    keep = np.ones(d.shape[0], dtype=bool)
    keep[3 * atom : 3 * atom + 3] = False
    return d[keep][:, keep].tocsc()


def _not_minimum(backend: str, n_negative: int = -1) -> NotAMinimumError:
    count = "some" if n_negative < 0 else str(n_negative)
    return NotAMinimumError(
        f"not a minimum: the {backend} factorisation of the reduced dynamical matrix found "
        f"{count} negative (or zero) pivot(s), i.e. imaginary or extra zero modes; relax the "
        "structure, or use solver='dense' (with allow_imaginary=True) to see the spectrum",
        n_imaginary=max(n_negative, 0),  # 0: this back end cannot count them
    )


def _logdet_cholmod(matrix: sp.csc_matrix) -> float:
    from sksparse.cholmod import CholmodNotPositiveDefiniteError, cholesky

    try:
        factor = cholesky(matrix)
    except CholmodNotPositiveDefiniteError as exc:
        raise _not_minimum("CHOLMOD") from exc
    return float(factor.logdet())


def fill_reducing_order(matrix: sp.spmatrix) -> np.ndarray:
    """Symmetric reverse Cuthill-McKee order of the 3x3-block graph, shape (n,).

    Ordered per atom block so the three components of an atom stay together (fewer, larger
    supernodes).
    """
    n = matrix.shape[0]
    blocks = sp.csr_matrix(matrix).tocoo()
    graph = sp.csr_matrix(
        (np.ones(blocks.nnz, dtype=np.int8), (blocks.row // 3, blocks.col // 3)),
        shape=(n // 3, n // 3),
    )
    atom_order = reverse_cuthill_mckee(graph, symmetric_mode=True)
    return (3 * atom_order[:, None] + np.arange(3)[None, :]).reshape(-1)


def _logdet_splu(matrix: sp.csc_matrix) -> float:
    # RCM on the atom graph gave the least fill on EAM Fe Hessians (slightly below SuperLU's
    # own MMD and COLAMD orderings); the permutation is symmetric, so det is unchanged.
    order = fill_reducing_order(matrix)
    matrix = sp.csc_matrix(matrix)[order][:, order].tocsc()
    try:
        lu = spla.splu(
            matrix,
            permc_spec="NATURAL",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )
    except RuntimeError as exc:  # "Factor is exactly singular"
        raise _not_minimum("SuperLU") from exc
    pivots = lu.U.diagonal()
    if not np.array_equal(lu.perm_r, lu.perm_c) or np.any(pivots == 0):
        # Without a threshold SuperLU leaves the diagonal only at an exactly zero pivot, which
        # a positive definite matrix never has.
        raise _not_minimum("SuperLU")
    n_negative = int(np.count_nonzero(pivots < 0))  # = negative eigenvalues (Sylvester)
    if n_negative:
        raise _not_minimum("SuperLU", n_negative)
    return float(np.sum(np.log(pivots)))


#: Largest matrix dimension handed to one LAPACK/BLAS call. The OpenBLAS 0.3.31 bundled with
#: scipy/numpy here segfaulted in dpotrf at n ~ 24,600 (an 8,191-atom cell; reproduced on a
#: plain tridiagonal matrix) and in a 16,381 x 8,192 x 16,381 GEMM, while n = 10,365 works:
#: larger matrices are factorised by Schur complements with panelled updates.
DENSE_CHOLESKY_BLOCK = 8192


def _cholesky_logdet(dense: np.ndarray) -> float:
    """ln det of a symmetric positive definite array by blocked Cholesky (consumes ``dense``).

    ln det [[A, B], [Bᵀ, C]] = ln det A + ln det (C - Xᵀ X) with X = L_A⁻¹ B, A = L_A L_Aᵀ,
    peeling :data:`DENSE_CHOLESKY_BLOCK` rows at a time; every step is LAPACK/BLAS level 3.
    """
    logdet = 0.0
    block = DENSE_CHOLESKY_BLOCK
    while True:
        n = dense.shape[0]
        head = min(n, block)
        # A C-ordered symmetric block read as its transpose is Fortran-ordered: factorised in
        # place, no copy.
        factor = scipy.linalg.cholesky(
            np.ascontiguousarray(dense[:head, :head]).T,
            lower=True,
            overwrite_a=True,
            check_finite=False,
        )
        logdet += 2.0 * float(np.sum(np.log(np.diagonal(factor))))
        if head == n:
            return logdet
        x = scipy.linalg.solve_triangular(
            factor, dense[:head, head:], lower=True, check_finite=False
        )
        del factor
        schur = dense[head:, head:]
        for start in range(0, schur.shape[1], block):  # panels keep each GEMM below the crash
            schur[:, start : start + block] -= x.T @ x[:, start : start + block]
        dense = schur


def _panelled_gram(x: np.ndarray) -> np.ndarray:
    """xᵀ x in column panels of at most :data:`DENSE_CHOLESKY_BLOCK` (see the OpenBLAS note)."""
    gram = np.empty((x.shape[1], x.shape[1]))
    for start in range(0, x.shape[1], DENSE_CHOLESKY_BLOCK):
        gram[:, start : start + DENSE_CHOLESKY_BLOCK] = x.T @ x[:, start : start + DENSE_CHOLESKY_BLOCK]
    return gram


def slab_dissection(
    matrix: sp.spmatrix, scaled_positions: np.ndarray, axis: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split atoms into two uncoupled half-cells and the separator between them.

    Atoms are cut by their fractional coordinate along ``axis`` into a lower part and an upper
    part; the separator is every lower-part atom coupled (a non-zero 3x3 block of ``matrix``) to
    an upper-part atom, so the remaining lower atoms and the upper atoms share no block. In a
    periodic cell this takes a slab at both faces of the cut. The cut is placed so that the two
    halves end up with equal atom counts.

    Parameters
    ----------
    matrix
        (3n, 3n) symmetric matrix with 3x3 atom blocks (n atoms).
    scaled_positions
        (n, 3) fractional coordinates of the same atoms.
    axis
        Cell axis cut across.

    Returns
    -------
    lower, upper, separator : ndarray of int
        Atom indices of the three sets (a partition of range(n)).
    """
    blocks = sp.csr_matrix(matrix).tocoo()
    graph = sp.csr_matrix(
        (np.ones(blocks.nnz, dtype=np.int8), (blocks.row // 3, blocks.col // 3)),
        shape=(matrix.shape[0] // 3,) * 2,
    )
    fraction = np.mod(scaled_positions[:, axis], 1.0)
    cut = 0.5
    for _ in range(2):  # the second pass moves the cut to balance the halves
        in_upper = fraction >= cut
        touches_upper = graph @ in_upper.astype(np.int64) > 0
        separator_mask = ~in_upper & touches_upper
        cut = 0.5 + 0.5 * separator_mask.mean()
    lower = np.flatnonzero(~in_upper & ~separator_mask)
    return lower, np.flatnonzero(in_upper), np.flatnonzero(separator_mask)


def _dof(atoms: np.ndarray) -> np.ndarray:
    return (3 * atoms[:, None] + np.arange(3)).reshape(-1)


def _logdet_dissection(matrix: sp.spmatrix, scaled_positions: np.ndarray) -> float:
    """ln det by the slab dissection: ln det A + ln det B + ln det(S - Σ Xᵀ X), X = L⁻¹ H_XS."""
    lower, upper, separator = slab_dissection(matrix, scaled_positions)
    if separator.size > DISSECTION_MAX_SEPARATOR * scaled_positions.shape[0] or not (
        lower.size and upper.size
    ):
        return _logdet_dense_cholesky(matrix)
    matrix = sp.csr_matrix(matrix)
    separator_dof = _dof(separator)
    schur = matrix[separator_dof][:, separator_dof].toarray()
    logdet = 0.0
    try:
        for half in (lower, upper):
            half_dof = _dof(half)
            factor = scipy.linalg.cholesky(
                matrix[half_dof][:, half_dof].toarray(),
                lower=True,
                overwrite_a=True,
                check_finite=False,
            )
            logdet += 2.0 * float(np.sum(np.log(np.diagonal(factor))))
            coupling = matrix[half_dof][:, separator_dof].toarray()
            x = scipy.linalg.solve_triangular(
                factor, coupling, lower=True, overwrite_b=True, check_finite=False
            )
            del factor, coupling
            schur -= _panelled_gram(x)
            del x
        return logdet + _cholesky_logdet(schur)
    except np.linalg.LinAlgError as exc:
        raise _not_minimum("dissection Cholesky") from exc


def _logdet_dense_cholesky(matrix: sp.spmatrix) -> float:
    try:
        return _cholesky_logdet(matrix.toarray())
    except np.linalg.LinAlgError as exc:
        raise _not_minimum("dense Cholesky") from exc


def _auto_backend(reduced: sp.spmatrix, have_positions: bool) -> str:
    n = reduced.shape[0]
    if _have_cholmod():
        return "cholmod"
    if reduced.nnz / float(n) ** 2 <= DENSE_FILL_FRACTION:
        return "splu"
    if have_positions and n > DISSECTION_MIN_DOF:
        return "dissection"
    return "dense-cholesky" if 8.0 * n**2 <= DENSE_MAX_BYTES else "splu"


def _check_backend(backend: str, scaled_positions: np.ndarray | None) -> None:
    if backend not in LOGDET_BACKENDS:
        raise UnknownNameError(
            f"unknown log-det back end {backend!r}; known: {', '.join(LOGDET_BACKENDS)}"
        )
    if backend == "dissection" and scaled_positions is None:
        raise InvalidOptionError(
            "backend='dissection' cuts the cell by atom positions: pass scaled_positions="
            "atoms.get_scaled_positions() (shape (N, 3)), or choose another back end"
        )


def _factorised_logdet(
    reduced: sp.spmatrix, backend: str, scaled_positions: np.ndarray | None, atom: int
) -> tuple[str, float]:
    """(back end used, ln det) of a positive definite reduced matrix (:class:`NotAMinimumError`
    if it is not)."""
    if backend == "auto":
        backend = _auto_backend(reduced, scaled_positions is not None)
    if backend == "cholmod":
        return backend, _logdet_cholmod(reduced)
    if backend == "splu":
        return backend, _logdet_splu(reduced)
    if backend == "dissection":
        kept = np.delete(np.asarray(scaled_positions, dtype=np.float64), atom, axis=0)
        return backend, _logdet_dissection(reduced, kept)
    return backend, _logdet_dense_cholesky(reduced)


def log_pdet(
    hessian: HessianMatrix,
    masses: np.ndarray,
    atom: int | None = None,
    backend: str = "auto",
    scaled_positions: np.ndarray | None = None,
) -> LogDetResult:
    """ln pdet(D) of a periodic cell's dynamical matrix by one factorisation.

    Parameters
    ----------
    hessian
        (3N, 3N) Hessian, eV/Å², dense or sparse, with exactly the 3 translational zero modes.
    masses
        (N,) masses, amu.
    atom
        Atom whose rows/columns are removed (default: the heaviest, which keeps D_red best
        conditioned; any atom gives the same result).
    backend
        ``auto`` | ``cholmod`` | ``splu`` | ``dense-cholesky`` | ``dissection``. ``auto``:
        CHOLMOD when scikit-sparse is installed; else, when more than
        :data:`DENSE_FILL_FRACTION` of D is non-zero, the slab dissection above
        :data:`DISSECTION_MIN_DOF` degrees of freedom (if ``scaled_positions`` is given) and
        one dense Cholesky below (if it fits in :data:`DENSE_MAX_BYTES`); else SuperLU.
    scaled_positions
        (N, 3) fractional coordinates of the atoms: needed by ``dissection``, which cuts the
        cell across its first axis.

    Returns
    -------
    LogDetResult
        ``log_pdet`` = Σ' ln ω² with ω² in eV/(Å² amu).

    Raises
    ------
    NotAMinimumError
        D_red is not positive definite (imaginary modes, or more than 3 zero modes). Its
        ``n_imaginary`` is the count from SuperLU's pivots, or 0 when the back end (Cholesky)
        cannot count them; ``min_omega2`` is NaN.
    UnknownNameError
        Unknown ``backend``.
    """
    _check_backend(backend, scaled_positions)
    masses = np.asarray(masses, dtype=np.float64)
    if atom is None:
        atom = int(np.argmax(masses))
    start = time.perf_counter()
    reduced = reduced_dynamical_matrix(hessian, masses, atom)
    backend, logdet = _factorised_logdet(reduced, backend, scaled_positions, atom)
    # Null vectors v_α ∝ sqrt(m_i): pdet = det(D_red) * (|v|² / v_j²)^3 = det(D_red) (M/m_j)^3.
    logdet += 3.0 * np.log(masses.sum() / masses[atom])
    return LogDetResult(
        log_pdet=float(logdet),
        n_modes=3 * len(masses) - 3,
        n_negative=0,
        backend=backend,
        removed_atom=atom,
        seconds=time.perf_counter() - start,
    )


#: Atoms whose share of the unstable mode (block norm) is below this fraction of the largest
#: are dropped from the deflation vector q, so that C = D_red + α q qᵀ stays sparse. Exactness
#: does not depend on it (the determinant lemma holds for any q); C must only stay positive
#: definite, which a tail of this size cannot spoil.
DEFLATION_CUTOFF = 1e-3


#: Relative accuracy of the Lanczos eigenvalues of the unstable mode. ln|ω²₋| enters
#: Σ' ln ω² directly, so 1e-12 keeps the saddle's log-det far inside 1e-10 relative; the
#: deflation itself is exact whatever the eigenvector's accuracy.
EIGEN_TOL = 1e-12


def lowest_eigenpairs(
    matrix: sp.spmatrix | spla.LinearOperator,
    k: int = 2,
    start: np.ndarray | None = None,
    tol: float = EIGEN_TOL,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` lowest (most negative) eigenvalues (k,) and eigenvectors (n, k) of a sparse
    symmetric matrix or operator, ascending, by ARPACK's Lanczos iteration to relative
    accuracy ``tol``; ``start`` (n,) seeds the Krylov space (default: a fixed random vector)."""
    n = matrix.shape[0]
    if start is None:
        start = np.random.default_rng(0).standard_normal(n)  # reproducible Krylov start
    values, vectors = spla.eigsh(matrix, k=k, which="SA", v0=start, tol=tol, maxiter=50 * n)
    order = np.argsort(values)
    return values[order], vectors[:, order]


def spectral_scale(matrix: sp.spmatrix) -> float:
    """max |eigenvalue| of a sparse symmetric matrix (the scale of the zero tolerance)."""
    start = np.random.default_rng(1).standard_normal(matrix.shape[0])
    # 1e-6: the zero tolerance is a fraction of this scale, not an exact quantity
    top = spla.eigsh(matrix, k=1, which="LM", v0=start, tol=1e-6, return_eigenvectors=False)
    return float(np.abs(top).max())


def lowest_internal_mode(
    matrix: sp.spmatrix | np.ndarray,
    translation: np.ndarray | None = None,
    start: np.ndarray | None = None,
    tol: float = EIGEN_TOL,
) -> tuple[float, np.ndarray]:
    """Lowest eigenpair of a periodic cell's H (eV/Å²) or D (eV/(Å² amu)) outside the 3
    translations: the eigenvalue (same unit as ``matrix``) and its unit (3N,) eigenvector.

    The translations (per-atom weights ``translation`` (N,) along x, y, z: uniform for H, the
    default; sqrt(m_i) for D) are lifted to the top of the spectrum (A + s T Tᵀ, s the spectral
    scale), so the result is the softest internal mode whether or not it is negative.
    ``start`` seeds the Lanczos iteration; ``tol`` is ARPACK's relative accuracy.
    """
    n_atoms = matrix.shape[0] // 3
    weights = np.ones(n_atoms) if translation is None else np.asarray(translation, dtype=np.float64)
    translations = np.zeros((3 * n_atoms, 3))
    for axis in range(3):
        translations[axis::3, axis] = weights / np.linalg.norm(weights)
    matrix = sp.csr_matrix(matrix) if sp.issparse(matrix) else np.asarray(matrix)
    lift = spectral_scale(sp.csr_matrix(matrix))
    operator = spla.LinearOperator(
        matrix.shape,
        matvec=lambda x: matrix @ x + lift * (translations @ (translations.T @ x)),
        dtype=np.float64,
    )
    values, vectors = lowest_eigenpairs(operator, k=1, start=start, tol=tol)
    return float(values[0]), vectors[:, 0]


def unstable_mode(
    hessian: HessianMatrix, masses: np.ndarray, zero_tol: float = DEFAULT_ZERO_TOL
) -> tuple[float, np.ndarray, float]:
    """The unstable mode of a first-order saddle, checked by a sparse eigensolver.

    Parameters
    ----------
    hessian
        (3N, 3N) Hessian, eV/Å², dense or sparse.
    masses
        (N,) masses, amu.
    zero_tol
        |ω²| below ``zero_tol`` * max |ω²| counts as zero.

    Returns
    -------
    omega2, mode, tolerance
        The negative ω² (eV/(Å² amu)), its unit eigenvector of D (3N,) and the absolute
        tolerance used (eV/(Å² amu)).

    Raises
    ------
    SaddleIsMinimumError, HigherOrderSaddleError
        The two lowest ω² of D hold no, or two, values below -tolerance (two is then a lower
        bound on the count).
    """
    d = mass_weighted_hessian(sp.csr_matrix(hessian), np.asarray(masses, dtype=np.float64))
    tolerance = zero_tol * spectral_scale(d)
    values, vectors = lowest_eigenpairs(d, k=2)
    n_negative = int(np.count_nonzero(values < -tolerance))
    lowest = float(values[0])
    if n_negative == 0 and d.shape[0] > 5:
        # no unstable mode: report the smallest ω² above the 3 translations, not a zero mode
        lowest = float(lowest_eigenpairs(d, k=4, tol=1e-8)[0][3])
    check_stationary_point("saddle", n_negative, lowest, tolerance, exact_count=n_negative < 2)
    return lowest, vectors[:, 0], tolerance


def _deflation_vector(mode: np.ndarray, atom: int, cutoff: float) -> np.ndarray:
    """The unstable mode (3N,) without ``atom``'s 3 components, atoms below ``cutoff`` of the
    largest block norm set to zero: shape (3N-3,)."""
    q = np.delete(mode, np.arange(3 * atom, 3 * atom + 3))
    blocks = np.sqrt((q.reshape(-1, 3) ** 2).sum(axis=1))
    q.reshape(-1, 3)[blocks < cutoff * blocks.max()] = 0.0
    return q


def log_pdet_saddle(
    hessian: HessianMatrix,
    masses: np.ndarray,
    atom: int | None = None,
    backend: str = "auto",
    scaled_positions: np.ndarray | None = None,
    zero_tol: float = DEFAULT_ZERO_TOL,
) -> LogDetResult:
    """Σ' ln ω² over the 3N - 4 positive modes of a periodic cell at a first-order saddle.

    The unstable mode is deflated (module docstring): ARPACK gives the two lowest eigenpairs of
    D (the mode count), C = D_red + α q qᵀ is factorised by the back end, qᵀ C⁻¹ q comes from
    conjugate gradients on C, and

        Σ' ln ω² = ln det C + ln|1 - α qᵀ C⁻¹ q| + 3 ln(M_tot / m_j) - ln|ω²₋|.

    Parameters
    ----------
    hessian
        (3N, 3N) Hessian, eV/Å², dense or sparse, with the 3 translational zero modes.
    masses
        (N,) masses, amu.
    atom
        Atom whose rows/columns are removed (default: the one with the smallest amplitude in
        the unstable mode; any atom gives the same result).
    backend
        As in :func:`log_pdet` (the factorisation of C).
    scaled_positions
        (N, 3) fractional coordinates, for ``dissection``.
    zero_tol
        |ω²| below ``zero_tol`` * max |ω²| counts as zero (as on the dense route).

    Returns
    -------
    LogDetResult
        ``log_pdet`` (ω² in eV/(Å² amu)), ``n_modes`` = 3N - 4, ``n_negative`` = 1,
        ``unstable_omega2`` = ω²₋.

    Raises
    ------
    SaddleIsMinimumError, HigherOrderSaddleError
        No negative ω², or a second negative one among the two lowest.
    NotAFirstOrderSaddleError
        The deflated factorisation contradicts the Lanczos count (an ill-converged mode).
    UnknownNameError, InvalidOptionError
        Unknown ``backend``; ``dissection`` without ``scaled_positions``.
    """
    _check_backend(backend, scaled_positions)
    masses = np.asarray(masses, dtype=np.float64)
    start = time.perf_counter()
    unstable, mode, tolerance = unstable_mode(hessian, masses, zero_tol)
    if atom is None:
        # where the unstable mode is weakest: q is then nearly an eigenvector of C, and the
        # conjugate gradients below start almost at the answer
        atom = int(np.argmin((mode.reshape(-1, 3) ** 2).sum(axis=1)))
    alpha = 2.0 * abs(unstable) + tolerance  # the deflated mode moves to about |ω²₋|
    reduced = reduced_dynamical_matrix(hessian, masses, atom)
    for cutoff in (DEFLATION_CUTOFF, 0.0):  # a full q if the truncated one falls short
        q = _deflation_vector(mode, atom, cutoff)
        support = np.flatnonzero(q)
        block = sp.csc_matrix(
            (alpha * np.outer(q[support], q[support]).ravel(),
             (np.repeat(support, support.size), np.tile(support, support.size))),
            shape=reduced.shape,
        )
        deflated = (reduced + block).tocsc()
        try:
            used, logdet = _factorised_logdet(deflated, backend, scaled_positions, atom)
        except NotAMinimumError:
            continue
        # q C q ≈ (ω²₋ + α)|q|² gives the start; 1e-12 is far below what ln|1 - α qᵀC⁻¹q| needs
        guess = q / float(q @ (deflated @ q)) * float(q @ q)
        solution, info = spla.cg(deflated, q, x0=guess, rtol=1e-12, atol=0.0, maxiter=20 * q.size)
        lemma = 1.0 - alpha * float(q @ solution)
        if info == 0 and lemma < 0.0:
            break
    else:
        raise NotAFirstOrderSaddleError(
            "the deflated factorisation of the saddle's dynamical matrix failed although the "
            f"Lanczos solver found one negative ω² ({unstable:.4g} eV/(Å² amu)): the "
            "unstable mode is ill-converged or nearly degenerate; use solver='dense'",
            n_negative=1,
            min_omega2=unstable,
        )
    logdet += np.log(-lemma) + 3.0 * np.log(masses.sum() / masses[atom]) - np.log(-unstable)
    return LogDetResult(
        log_pdet=float(logdet),
        n_modes=3 * len(masses) - 4,
        n_negative=1,
        backend=used,
        removed_atom=atom,
        seconds=time.perf_counter() - start,
        unstable_omega2=unstable,
    )
