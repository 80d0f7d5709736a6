"""SO(4) bispectrum descriptor (Bartók, Payne, Kondor, Csányi, PRL 104, 136403, 2010), SNAP form.

The neighbour density of atom i is mapped onto the 3-sphere and expanded in hyperspherical
harmonics, i.e. Wigner matrices U^j_{m,m'} of SU(2), as defined in Thompson et al. (J. Comput.
Phys. 285, 316, 2015, Sec. 2) and evaluated by LAMMPS ``compute sna/atom`` (whose documentation
states the same formulas). Equations labelled (B1)-(B4) here are cited in the code:

    (B1) θ0 = rfac0 π r_ij / r_cut  (rmin0 = 0); θ, φ: polar angles of r_ij
    (B2) u^j_{m,m'}(i) = δ_{m,m'}  +  Σ_{j in R_i} fc(r_ij) U^j_{m,m'}(θ0, θ, φ)
    (B3) fc(r) = ½ (cos(π r / r_cut) + 1)
    (B4) B_{j1,j2,j} = Σ_{m,m'} (u^j_{m,m'})* Σ_{m1 m1' m2 m2'} C^{j m}_{j1 m1 j2 m2}
                       C^{j m'}_{j1 m1' j2 m2'} u^{j1}_{m1,m1'} u^{j2}_{m2,m2'}

with Clebsch-Gordan coefficients C. The δ_{m,m'} is the central atom's own contribution
(LAMMPS ``wself = 1``: the 4D image of r = 0 is the identity rotation), and the neighbour weight
w_j is 1. All j are stored doubled (``2j`` integers), as in LAMMPS.

U^j is built layer by layer with the recursion of LAMMPS ``SNA::compute_uarray`` (Cayley-Klein
parameters a = (z0 - i z)/r0, b = (y - i x)/r0, z0 = r cot θ0, r0 = r / sin θ0):

    U^j[ma, mb] = sqrt((j-ma)/(j-mb)) a* U^{j-1}[ma, mb] - sqrt(ma/(j-mb)) b* U^{j-1}[ma-1, mb]

for 2 mb <= j, and the other half from U^j[j-ma, j-mb] = (-1)^(ma-mb) (U^j[ma, mb])*.

Components (QUIP ``bispectrum_so4`` convention): only the diagonal j1 = j2, for
2j1 = 0..twojmax and 2j = 0, 2, 4, ... <= min(twojmax, 2·2j1): 26 components at twojmax = 7, in
that order (2j1 outer, 2j inner). LAMMPS ``compute sna/atom`` lists instead B_{j1,j2,j} with
j1 >= j2, j >= j1; the identity B_{j1,j2,j}/(2j+1) = B_{j,j2,j1}/(2j1+1) gives
B_{j1,j1,j} = (2j+1)/(2j1+1) B_{j1,j,j1} for the diagonal components LAMMPS stores permuted
(:func:`lammps_column_map`).

Species: the descriptor is element-agnostic (every neighbour has weight 1, LAMMPS ``chem`` off);
``species`` restricts the elements a provider accepts, as for AFS.

Gradients: :meth:`BispectrumSO4Descriptor.vjp` back-propagates w · Σ_i B^i through u^j(i)
(product rule on (B4)) and then through the recursion itself in reverse mode (:func:`wigner_vjp`)
to the pair vectors, without forming a Jacobian or the derivative of every U^j.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp
from ase import Atoms

from ..errors import DescriptorError
from .afs import validate_species
from .base import DescriptorProvider
from .chunks import iter_spatial_chunks
from .neighbors import Pairs, neighbor_pairs

#: LAMMPS' customary rfac0 = 0.99363: θ0 stops short of π at r_cut.
DEFAULT_RFAC0 = 1.0 - 0.02 / math.pi

#: Pairs whose Wigner layers are held at once (all layers for the gradient); sets peak memory (measured at
#: twojmax = 7 on 1,024 atoms: 43 MB for the descriptors, 124 MB for the gradient).
DEFAULT_PAIR_BATCH = 8_192

#: Centre atoms whose triple products are evaluated at once (memory knob).
DEFAULT_ATOM_BATCH = 256


# --------------------------------------------------------------------------- index tables
def diagonal_triples(twojmax: int) -> list[tuple[int, int, int]]:
    """(2j1, 2j2, 2j) of the diagonal components in QUIP order, j1 = j2 (module docstring)."""
    return [
        (j1, j1, j) for j1 in range(twojmax + 1) for j in range(0, min(twojmax, 2 * j1) + 1, 2)
    ]


def lammps_triples(twojmax: int) -> list[tuple[int, int, int]]:
    """(2j1, 2j2, 2j) of LAMMPS ``compute sna/atom`` columns in LAMMPS order (j1 >= j2, j >= j1)."""
    return [
        (j1, j2, j)
        for j1 in range(twojmax + 1)
        for j2 in range(j1 + 1)
        for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2)
        if j >= j1
    ]


def lammps_column_map(twojmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Column of LAMMPS' list and factor giving each diagonal component: D[:, k] = f_k L[:, c_k].

    Returns ``(columns, factors)``, both shape (dim,). A diagonal (j1, j1, j) with j >= j1 is a
    LAMMPS column itself (factor 1); one with j < j1 is stored as (j1, j, j1) and
    B_{j1,j1,j} = (j + 1)/(j1 + 1) B_{j1,j,j1} in doubled units, i.e. (2j+1)/(2j1+1).
    """
    index = {t: k for k, t in enumerate(lammps_triples(twojmax))}
    columns, factors = [], []
    for j1, _, j in diagonal_triples(twojmax):
        if j >= j1:
            columns.append(index[(j1, j1, j)])
            factors.append(1.0)
        else:
            columns.append(index[(j1, j, j1)])
            factors.append((j + 1) / (j1 + 1))
    return np.array(columns), np.array(factors)


def clebsch_gordan(j1: int, m1: int, j2: int, m2: int, j: int, m: int) -> float:
    """<j1 m1 j2 m2 | j m> with all arguments doubled (2j, 2m integers), Racah's formula.

    Exact integer factorials, so every coefficient is correct to the last bit of a float.
    """
    if m1 + m2 != m or abs(m1) > j1 or abs(m2) > j2 or abs(m) > j:
        return 0.0
    if j > j1 + j2 or j < abs(j1 - j2) or (j1 + j2 + j) % 2 or (j1 + m1) % 2 or (j2 + m2) % 2:
        return 0.0
    f = math.factorial
    a, b, c = (j1 + j2 - j) // 2, (j1 - j2 + j) // 2, (-j1 + j2 + j) // 2
    delta = f(a) * f(b) * f(c) / f((j1 + j2 + j) // 2 + 1)
    norm = (
        (j + 1)
        * f((j1 + m1) // 2) * f((j1 - m1) // 2)
        * f((j2 + m2) // 2) * f((j2 - m2) // 2)
        * f((j + m) // 2) * f((j - m) // 2)
    )
    total = 0
    z_min = max(0, (j2 - j - m1) // 2, (j1 - j + m2) // 2)
    z_max = min(a, (j1 - m1) // 2, (j2 + m2) // 2)
    for z in range(z_min, z_max + 1):
        denom = (
            f(z) * f(a - z) * f((j1 - m1) // 2 - z) * f((j2 + m2) // 2 - z)
            * f((j - j2 + m1) // 2 + z) * f((j - j1 - m2) // 2 + z)
        )
        total += (-1) ** z / denom
    return float(total * math.sqrt(delta * norm))


def u_offsets(twojmax: int) -> np.ndarray:
    """Start of layer 2j in the flattened u array, shape (twojmax + 2,).

    Layer j holds (j+1)² values, (ma, mb) at offset + ma (j + 1) + mb.
    """
    return np.concatenate([[0], np.cumsum([(j + 1) ** 2 for j in range(twojmax + 1)])])


def _nonzero_couplings(j1: int, j2: int, j: int) -> list[list[tuple[int, int, float]]]:
    """For each m = 0..j (index into u^j, doubled-j convention), the ``(m1, m2, C)`` with
    m1 = 0..j1, m2 = m - m1 + (j1 + j2 - j)/2 in 0..j2 and Clebsch-Gordan coefficient C ≠ 0."""
    shift = (j1 + j2 - j) // 2
    out = []
    for m in range(j + 1):
        row = []
        for m1 in range(j1 + 1):
            m2 = m - m1 + shift
            if not 0 <= m2 <= j2:
                continue
            c = clebsch_gordan(j1, 2 * m1 - j1, j2, 2 * m2 - j2, j, 2 * m - j)
            if c != 0.0:
                row.append((m1, m2, c))
        out.append(row)
    return out


@lru_cache(maxsize=8)
def _triple_terms(
    twojmax: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sparse expansion of (B4) for every diagonal triple: B_t = Re Σ_k c_k u_p u_q u_r*.

    Returns ``(p, q, r, coef, starts)``: flattened u indices (K,) of u^{j1}_{ma1,mb1},
    u^{j2}_{ma2,mb2} and u^j_{ma,mb}, the products of the two Clebsch-Gordan coefficients (K,), and
    the first term of each triple (dim,) (terms are grouped by triple). Two symmetries halve the
    list twice, each kept term carrying the weight of the ones it stands for:
    u^j[j-ma, j-mb] = ±(u^j[ma, mb])* maps each term onto the complex conjugate of its mirror
    (ma, mb) -> (j-ma, j-mb), which has the same real part; and for j1 = j2 the terms (p, q) and
    (q, p) are equal (the CG sign (-1)^(j1+j2-j) appears squared).
    """
    off = u_offsets(twojmax)
    p, q, r, coef, starts = [], [], [], [], []
    for j1, j2, j in diagonal_triples(twojmax):
        starts.append(len(coef))
        terms: dict[tuple[int, int, int], float] = {}
        # The same couplings serve the row (ma) and column (mb) indices of u^j.
        couplings = _nonzero_couplings(j1, j2, j)
        size = (j + 1) ** 2
        for ma in range(j + 1):
            for mb in range(j + 1):
                flat = ma * (j + 1) + mb
                mirror = size - 1 - flat
                if flat > mirror:
                    continue
                weight = 2.0 if flat < mirror else 1.0
                for ma1, ma2, ca in couplings[ma]:
                    for mb1, mb2, cb in couplings[mb]:
                        first = off[j1] + ma1 * (j1 + 1) + mb1
                        second = off[j2] + ma2 * (j2 + 1) + mb2
                        key = (min(first, second), max(first, second), off[j] + flat)
                        terms[key] = terms.get(key, 0.0) + weight * ca * cb
        for (kp, kq, kr), c in sorted(terms.items()):
            if c != 0.0:
                p.append(kp)
                q.append(kq)
                r.append(kr)
                coef.append(c)
    return (
        np.array(p, dtype=np.intp),
        np.array(q, dtype=np.intp),
        np.array(r, dtype=np.intp),
        np.array(coef),
        np.array(starts, dtype=np.intp),
    )


# --------------------------------------------------------------------------- Wigner layers
def _cayley_klein(
    D: np.ndarray, r: np.ndarray, r_cut: float, rfac0: float, with_grad: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """a, b (P,) complex of pair vectors D (P, 3), and ∂a/∂D, ∂b/∂D (3, P) if ``with_grad``.

    a = (z0 - i z)/r0 and b = (y - i x)/r0 with θ0 = rfac0 π r / r_cut, z0 = r cot θ0 and
    1/r0 = sin θ0 / r (B1; LAMMPS ``compute_uarray``).
    """
    x, y, z = D[:, 0], D[:, 1], D[:, 2]
    scale = rfac0 * math.pi / r_cut
    theta0 = scale * r
    sin0, cos0 = np.sin(theta0), np.cos(theta0)
    r0inv = sin0 / r
    z0 = r * cos0 / sin0
    a = (z0 - 1j * z) * r0inv
    b = (y - 1j * x) * r0inv
    if not with_grad:
        return a, b, None, None
    unit = (D / r[:, None]).T
    # d z0/dr and d(1/r0)/dr; every radial function f(r) has ∂f/∂D = f'(r) D̂
    dz0 = (cos0 / sin0 - r * scale / sin0**2) * unit
    dr0inv = ((scale * cos0 * r - sin0) / r**2) * unit
    da = (dz0 * r0inv + z0 * dr0inv) - 1j * (z * dr0inv)
    da[2] -= 1j * r0inv
    db = (y - 1j * x) * dr0inv
    db[1] += r0inv
    db[0] -= 1j * r0inv
    return a, b, da, db


@lru_cache(maxsize=8)
def _recursion_coefficients(twojmax: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each layer j >= 1: sqrt((j-ma)/(j-mb)) for ma < j and sqrt(ma/(j-mb)) for ma >= 1 on
    the nb = j//2 + 1 computed columns, shapes (j, nb, 1), and the (-1)^(ma-mb) signs of the
    mirrored columns mb >= nb, shape (j+1, j+1-nb, 1)."""
    out = [(np.zeros((0, 1, 1)), np.zeros((0, 1, 1)), np.ones((1, 0, 1)))]
    for j in range(1, twojmax + 1):
        nb = j // 2 + 1
        mb = np.arange(nb)[None, :]
        keep = np.sqrt((j - np.arange(j)[:, None]) / (j - mb))
        lower = np.sqrt(np.arange(1, j + 1)[:, None] / (j - mb))
        ma, mb_full = np.meshgrid(np.arange(j + 1), np.arange(nb, j + 1), indexing="ij")
        sign = np.where((ma - mb_full) % 2 == 0, 1.0, -1.0)
        out.append((keep[..., None], lower[..., None], sign[..., None]))
    return out


def wigner_layers(
    D: np.ndarray, r: np.ndarray, r_cut: float, rfac0: float, twojmax: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(j, U^j)`` for 2j = 0..twojmax, for pair vectors D (P, 3) Å of lengths r (P,) Å.

    U^j has shape (j+1, j+1, P), complex. The pair axis is last so that every step of the
    recursion (module docstring) is a contiguous vector operation.
    """
    n = len(r)
    a, b, _, _ = _cayley_klein(D, r, r_cut, rfac0, with_grad=False)
    ac, bc = np.conj(a), np.conj(b)
    coeffs = _recursion_coefficients(twojmax)
    U = np.ones((1, 1, n), dtype=complex)
    yield 0, U
    for j in range(1, twojmax + 1):
        keep, lower, sign = coeffs[j]
        nb = j // 2 + 1
        prev = U[:, :nb]
        new = np.empty((j + 1, j + 1, n), dtype=complex)
        new[j, :nb] = 0.0
        new[:j, :nb] = keep * (ac * prev)
        new[1:, :nb] -= lower * (bc * prev)
        # U[ma, mb] = (-1)^(ma-mb) U[j-ma, j-mb]* for the columns mb >= nb
        new[:, nb:] = sign * np.conj(new[::-1, j - nb :: -1])
        U = new
        yield j, U


def wigner_vjp(
    D: np.ndarray,
    r: np.ndarray,
    G: np.ndarray,
    r_cut: float,
    rfac0: float,
    twojmax: int,
) -> tuple[np.ndarray, np.ndarray]:
    """F = Re Σ_j Σ_{ma,mb} G^j[ma, mb] U^j[ma, mb] of each pair, and ∂F/∂D, by reverse mode.

    Parameters
    ----------
    D, r
        Pair vectors (P, 3) Å and their lengths (P,) Å.
    G
        Weights of the flattened layers (n_u, P), complex (layout of :func:`u_offsets`).

    Returns
    -------
    F (P,) and ∂F/∂D (P, 3) in 1/Å (times the units of G).

    The recursion of :func:`wigner_layers` is run forward, keeping every layer, then its adjoint
    runs from 2j = twojmax down to 1: the mirrored columns fold their weight onto the computed
    half (Re(A s U*) = Re(s A* U)), each step passes weight to U^{j-1} and accumulates
    X_a = ∂F/∂a*, X_b = ∂F/∂b*; finally ∂F/∂D_k = Re(X_a ∂a*/∂D_k + X_b ∂b*/∂D_k). This costs
    about two forward passes, where differentiating every U^j (LAMMPS ``compute_duarray``) costs
    three times that.
    """
    offsets = u_offsets(twojmax)
    layers = [U for _, U in wigner_layers(D, r, r_cut, rfac0, twojmax)]
    n = len(r)

    def weights(j: int) -> np.ndarray:
        return G[offsets[j] : offsets[j + 1]].reshape(j + 1, j + 1, n)

    F = sum(np.einsum("abp,abp->p", weights(j), U).real for j, U in enumerate(layers))
    a, b, da, db = _cayley_klein(D, r, r_cut, rfac0, with_grad=True)
    ac, bc = np.conj(a), np.conj(b)
    coeffs = _recursion_coefficients(twojmax)
    x_a = np.zeros(n, dtype=complex)
    x_b = np.zeros(n, dtype=complex)
    A = weights(twojmax).copy()
    for j in range(twojmax, 0, -1):
        keep, lower, sign = coeffs[j]
        nb = j // 2 + 1
        # fold: U[ma, mb] = s U[j-ma, j-mb]* for mb >= nb sends s A[ma, mb]* to (j-ma, j-mb)
        half = A[:, :nb].copy()
        half[:, : j + 1 - nb] += (sign * np.conj(A[:, nb:]))[::-1, ::-1]
        prev = layers[j - 1][:, :nb]
        via_a = half[:j] * keep
        via_b = half[1:] * lower
        x_a += np.einsum("abp,abp->p", via_a, prev)
        x_b -= np.einsum("abp,abp->p", via_b, prev)
        A = weights(j - 1).copy()
        A[:, :nb] += via_a * ac - via_b * bc
    grad = (x_a * np.conj(da) + x_b * np.conj(db)).real.T
    return F, grad


def cutoff_function(r: np.ndarray, r_cut: float) -> tuple[np.ndarray, np.ndarray]:
    """fc(r) = ½ (cos(π r / r_cut) + 1) (B3) and dfc/dr (1/Å), shapes of r."""
    arg = math.pi * r / r_cut
    return 0.5 * (np.cos(arg) + 1.0), -0.5 * math.pi / r_cut * np.sin(arg)


# --------------------------------------------------------------------------- provider
class BispectrumSO4Descriptor(DescriptorProvider):
    """Per-atom SO(4) bispectrum, diagonal components B_{j1,j1,j} (26 at twojmax = 7).

    Parameters
    ----------
    r_cut
        Cut-off radius, Å (> 0); 5 in the paper. LAMMPS: ``rcutfac * 2 R`` with R the type radius.
    twojmax
        Band limit 2 j_max (integer >= 0); 7 in the paper (j_max = 3.5).
    rfac0
        Fraction of π reached by θ0 at r_cut (0 < rfac0 < 1); LAMMPS' 0.99363 = 1 - 0.02/π.
    species
        Chemical symbols the provider accepts (None: any). Every neighbour counts alike.
    pair_batch, atom_batch
        Pairs and centre atoms evaluated at once (memory knobs, not descriptor parameters).
    """

    name = "bso4"

    def __init__(
        self,
        r_cut: float = 5.0,
        twojmax: int = 7,
        rfac0: float = DEFAULT_RFAC0,
        species: Sequence[str] | None = None,
        pair_batch: int = DEFAULT_PAIR_BATCH,
        atom_batch: int = DEFAULT_ATOM_BATCH,
    ):
        if isinstance(twojmax, bool) or not isinstance(twojmax, (int, np.integer)) or twojmax < 0:
            raise DescriptorError(
                f"bso4 twojmax (= 2 j_max) must be an integer >= 0 (paper: 7), got {twojmax!r}"
            )
        try:
            r_cut = float(r_cut)
            rfac0 = float(rfac0)
        except (TypeError, ValueError):
            raise DescriptorError(
                f"bso4 r_cut (Å) and rfac0 must be numbers, got {r_cut!r} and {rfac0!r}"
            ) from None
        if not (math.isfinite(r_cut) and r_cut > 0):
            raise DescriptorError(
                f"bso4 r_cut must be a positive length in Å (paper: 5), got {r_cut!r}"
            )
        if not 0.0 < rfac0 < 1.0:
            # at rfac0 = 1 a neighbour at r_cut maps onto the pole θ0 = π, where z0 = r cot θ0
            # diverges
            raise DescriptorError(
                f"bso4 rfac0 must lie in (0, 1) (LAMMPS default 0.99363), got {rfac0!r}"
            )
        if int(pair_batch) < 1 or int(atom_batch) < 1:
            raise DescriptorError(
                f"pair_batch and atom_batch must be >= 1, got {pair_batch} and {atom_batch}"
            )
        self.r_cut = r_cut
        self.twojmax = int(twojmax)
        self.rfac0 = rfac0
        self._species = validate_species(species)
        self.pair_batch = int(pair_batch)
        self.atom_batch = int(atom_batch)
        self._offsets = u_offsets(self.twojmax)
        self._terms = _triple_terms(self.twojmax)
        p, _, _, coef, starts = self._terms
        counts = np.diff(np.append(starts, len(coef)))
        #: (dim, K): sums the c_k-weighted terms of each triple
        self._reduce = sp.csr_matrix(
            (coef, (np.repeat(np.arange(len(starts)), counts), np.arange(len(coef)))),
            shape=(len(starts), len(coef)),
        )

    # ------------------------------------------------------------------ protocol
    @property
    def params(self) -> dict[str, Any]:
        """``r_cut`` (Å), ``twojmax``, ``rfac0`` and ``species`` (list of symbols or None)."""
        return {
            "r_cut": self.r_cut,
            "twojmax": self.twojmax,
            "rfac0": self.rfac0,
            "species": self._species,
        }

    @property
    def dim(self) -> int:
        """Number of diagonal components (26 at twojmax = 7)."""
        return len(diagonal_triples(self.twojmax))

    @property
    def component_labels(self) -> list[str]:
        """``"B(2j1,2j2,2j)"`` for each component, in output order."""
        return [f"B({j1},{j2},{j})" for j1, j2, j in diagonal_triples(self.twojmax)]

    # ------------------------------------------------------------------ evaluation
    def _pair_batches(self, n_pairs: int) -> Iterator[slice]:
        for start in range(0, n_pairs, self.pair_batch):
            yield slice(start, min(start + self.pair_batch, n_pairs))

    def _atom_batches(self, n_atoms: int) -> Iterator[slice]:
        for start in range(0, n_atoms, self.atom_batch):
            yield slice(start, min(start + self.atom_batch, n_atoms))

    def _density_expansion(
        self, atoms: Atoms, centers: np.ndarray
    ) -> tuple[np.ndarray, Pairs, np.ndarray]:
        """u^j_{m,m'} of each centre (B2), flattened to (n_u, M) complex, with the pairs used
        and the column (position in ``centers``) of each pair's centre (P,)."""
        pairs = neighbor_pairs(atoms, self.r_cut, centers)
        column_of_atom = np.full(len(atoms), -1, dtype=np.intp)
        column_of_atom[centers] = np.arange(len(centers))
        columns = column_of_atom[pairs.i]
        if np.any(np.diff(columns) < 0):
            # contiguous runs of each centre's pairs let np.add.reduceat do the sum of (B2)
            order = np.argsort(columns, kind="stable")
            pairs = Pairs(i=pairs.i[order], j=pairs.j[order], D=pairs.D[order], d=pairs.d[order])
            columns = columns[order]
        u = np.zeros((int(self._offsets[-1]), len(centers)), dtype=complex)
        # central atom: the 4D image of r = 0 is the identity rotation (LAMMPS wself = 1)
        for j in range(self.twojmax + 1):
            u[self._offsets[j] + np.arange(j + 1) * (j + 2)] = 1.0
        for batch in self._pair_batches(len(pairs.d)):
            fc, _ = cutoff_function(pairs.d[batch], self.r_cut)
            cols = columns[batch]
            starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
            owners = cols[starts]
            for j, U in wigner_layers(
                pairs.D[batch], pairs.d[batch], self.r_cut, self.rfac0, self.twojmax
            ):
                layer = U.reshape(-1, len(fc)) * fc
                u[self._offsets[j] : self._offsets[j + 1], owners] += np.add.reduceat(
                    layer, starts, axis=1
                )
        return u, pairs, columns

    def _bispectrum(self, u: np.ndarray) -> np.ndarray:
        """B (M, dim) from u (n_u, M) by the sparse triple products of :func:`_triple_terms`."""
        p, q, r, _, _ = self._terms
        out = np.empty((u.shape[1], self.dim))
        for batch in self._atom_batches(u.shape[1]):
            blk = u[:, batch]
            pq = blk[p] * blk[q]
            ur = blk[r]
            out[batch] = (self._reduce @ (pq.real * ur.real + pq.imag * ur.imag)).T
        return out

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """Diagonal bispectrum of the atoms ``centers`` (M,), shape (M, dim)."""
        u, _, _ = self._density_expansion(atoms, np.asarray(centers, dtype=np.intp))
        return self._bispectrum(u)

    def _adjoint(self, u: np.ndarray, w: np.ndarray) -> np.ndarray:
        """G (n_u, M) complex with d(w · B) = Re Σ_x G_x du_x for every variation du of u.

        Product rule on each term c u_p u_q u_r* of (B4): ∂/∂u_p -> c u_q u_r*,
        ∂/∂u_q -> c u_p u_r*, and the conjugated factor gives Re(c u_p u_q du_r*) =
        Re((c u_p u_q)* du_r).
        """
        p, q, r, coef, starts = self._terms
        counts = np.diff(np.append(starts, len(coef)))
        cw = coef * np.repeat(w, counts)
        n_terms, n_u = len(coef), u.shape[0]
        terms = np.arange(n_terms)
        to_p = sp.csr_matrix((cw, (p, terms)), shape=(n_u, n_terms))
        to_q = sp.csr_matrix((cw, (q, terms)), shape=(n_u, n_terms))
        to_r = sp.csr_matrix((cw, (r, terms)), shape=(n_u, n_terms))
        G = np.empty_like(u)
        for batch in self._atom_batches(u.shape[1]):
            blk = u[:, batch]
            up, uq, urc = blk[p], blk[q], np.conj(blk[r])
            G[:, batch] = to_p @ (uq * urc) + to_q @ (up * urc) + to_r @ np.conj(up * uq)
        return G

    def vjp(self, atoms: Atoms, w: np.ndarray, chunk_size: int = 20_000) -> np.ndarray:
        """Gradient ∂(w · Σ_i B^i)/∂r_k, shape (N, 3), units of B per Å (not a force).

        Parameters
        ----------
        atoms
            Structure (periodic or isolated).
        w
            Weights, shape (dim,).
        chunk_size
            Above this many atoms, spatial chunks of about ``chunk_size`` centres (with a halo
            of r_cut) are differentiated one at a time, so memory does not grow with N.
        """
        w = self.check_weights(w)
        self.check_atoms(atoms)
        if len(atoms) <= chunk_size:
            return self._vjp_centers(atoms, np.arange(len(atoms)), w)
        grad = np.zeros((len(atoms), 3))
        for sub_atoms, n_centers in iter_spatial_chunks(atoms, self.cutoff, chunk_size):
            sub_grad = self._vjp_centers(sub_atoms, np.arange(n_centers), w)
            parent = sub_atoms.arrays["parent_index"]
            for k in range(3):
                grad[:, k] += np.bincount(parent, sub_grad[:, k], minlength=len(atoms))
        return grad

    def _vjp_centers(self, atoms: Atoms, centers: np.ndarray, w: np.ndarray) -> np.ndarray:
        """∂(w · Σ_{i in centers} B^i)/∂r_k for every atom k of ``atoms``, shape (N, 3)."""
        u, pairs, columns = self._density_expansion(atoms, centers)
        G = self._adjoint(u, w)
        grad = np.zeros((len(atoms), 3))
        for batch in self._pair_batches(len(pairs.d)):
            D, d = pairs.D[batch], pairs.d[batch]
            fc, dfc = cutoff_function(d, self.r_cut)
            g_pairs = np.take(G, columns[batch], axis=1)
            radial, angular = wigner_vjp(D, d, g_pairs, self.r_cut, self.rfac0, self.twojmax)
            # ∂(fc U)/∂D = fc' D̂ U + fc ∂U/∂D
            g_pair = (dfc * radial / d)[:, None] * D + fc[:, None] * angular
            # D = r_j - r_i: the neighbour gets +g, the centre -g
            for k in range(3):
                grad[:, k] += np.bincount(pairs.j[batch], g_pair[:, k], minlength=len(atoms))
                grad[:, k] -= np.bincount(pairs.i[batch], g_pair[:, k], minlength=len(atoms))
        return grad
