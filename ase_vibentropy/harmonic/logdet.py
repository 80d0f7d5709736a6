"""Exact ln pdet(D) without diagonalisation (SPEC §4).

For a periodic cell the null space of D = M^-1/2 H M^-1/2 is the three uniform translations
v_α (components sqrt(m_i) on direction α). Removing the three rows and columns of one atom j
leaves a matrix D_red that is positive definite at a minimum, and

    ln pdet(D) = ln det(D_red) + 3 ln(M_tot / m_j).

ln det(D_red) comes from a Cholesky-type factorisation: CHOLMOD (scikit-sparse) when it is
importable, otherwise scipy's SuperLU in symmetric mode without pivoting (an LDLᵀ in disguise,
so the signs of the pivots give the inertia: Sylvester's law), or LAPACK's dense Cholesky
when the matrix is too dense for a sparse factorisation to pay (EAM Hessians couple atoms up
to 2 r_c apart). A failed factorisation, or negative pivots, means "not a minimum".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import reverse_cuthill_mckee

from ..errors import NotAMinimumError, UnknownNameError
from .hessian import HessianMatrix
from .spectrum import mass_weighted_hessian

#: Factorisation back ends of :func:`log_pdet`.
LOGDET_BACKENDS = ("auto", "cholmod", "splu", "dense-cholesky")

#: Above this fraction of non-zero entries ``auto`` factorises densely: fill-in makes the sparse
#: factor of an EAM Hessian nearly full anyway (the Hessian couples atoms up to 2 r_c apart), and
#: LAPACK's blocked Cholesky runs at a far higher flop rate than SuperLU. Measured on bcc Fe
#: vacancy cells (1,023-1,999 atoms, 7-15 % non-zero) dense Cholesky wins throughout.
DENSE_FILL_FRACTION = 0.005

#: ``auto`` never densifies a matrix larger than this, bytes (float64).
DENSE_MAX_BYTES = 6e9


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
    """

    log_pdet: float
    n_modes: int
    n_negative: int
    backend: str
    removed_atom: int
    seconds: float


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


def _logdet_dense_cholesky(matrix: sp.spmatrix) -> float:
    try:
        return _cholesky_logdet(matrix.toarray())
    except np.linalg.LinAlgError as exc:
        raise _not_minimum("dense Cholesky") from exc


def log_pdet(
    hessian: HessianMatrix,
    masses: np.ndarray,
    atom: int | None = None,
    backend: str = "auto",
) -> LogDetResult:
    """ln pdet(D) of a periodic cell's dynamical matrix by one factorisation (SPEC §4).

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
        ``auto`` | ``cholmod`` | ``splu`` | ``dense-cholesky``. ``auto``: CHOLMOD when
        scikit-sparse is installed, else dense Cholesky when more than
        :data:`DENSE_FILL_FRACTION` of D is non-zero (and it fits in
        :data:`DENSE_MAX_BYTES`), else SuperLU.

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
    if backend not in LOGDET_BACKENDS:
        raise UnknownNameError(
            f"unknown log-det back end {backend!r}; known: {', '.join(LOGDET_BACKENDS)}"
        )
    masses = np.asarray(masses, dtype=np.float64)
    if atom is None:
        atom = int(np.argmax(masses))
    start = time.perf_counter()
    reduced = reduced_dynamical_matrix(hessian, masses, atom)
    if backend == "auto":
        density = reduced.nnz / float(reduced.shape[0]) ** 2
        if _have_cholmod():
            backend = "cholmod"
        elif density > DENSE_FILL_FRACTION and 8.0 * reduced.shape[0] ** 2 <= DENSE_MAX_BYTES:
            backend = "dense-cholesky"
        else:
            backend = "splu"
    if backend == "cholmod":
        logdet = _logdet_cholmod(reduced)
    elif backend == "splu":
        logdet = _logdet_splu(reduced)
    else:
        logdet = _logdet_dense_cholesky(reduced)
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
