"""Solid-harmonic wavelet scattering S_{J,L} (paper Eq. 19-21; Eickenberg et al. 2017, refs. 35-36).

A global descriptor of the whole structure, computed on an FFT grid:

1. Density (Eq. 19): ρ(r) = Σ_i g_σ(r - r_i), with g_σ the normalised Gaussian of standard
   deviation ``sigma`` (Å), so ∫ρ = N and ρ is in atoms/Å³.
2. Wavelets (Eq. 21) at scale s_j = ``base_scale`` · 2^j (Å):
   ψ_{j,l}^m(r) = s_j^-3 (2π)^-3/2 exp(-|r/s_j|²/2) |r/s_j|^l Y_lm(r̂),
   with real orthonormal spherical harmonics Y_lm. The factor s_j^-3 is our normalisation (the
   paper's Eq. 21 leaves it out): it makes ψ_{j,l}(r) = 2^-3j ψ_{0,l}(2^-j r), i.e. every
   wavelet has the same L1 norm and the same Fourier amplitude at every scale, so components of
   different scales have comparable magnitudes. Its Fourier transform is exact and simple:
   ψ̂_{j,l}^m(k) = (-i)^l s_j^l |k|^l Y_lm(k̂) exp(-s_j² k²/2)    (Hecke-Bochner).
3. Coefficients (Eq. 20): S[j, l] = ∫ (Σ_m |ρ * ψ_{j,l}^m(r)|²)^{1/2} dr, dimensionless.
   Σ_m over real harmonics equals Σ_m over complex ones (a unitary change of basis), which makes
   S rotation invariant. For l = 0 the integrand is positive, so S[j, 0] = N / √(4π) exactly for
   every structure and scale: those components count atoms (a per-atom constant).

Component order is scale-major: index j_index · (l_max + 1) + l; with several ``species`` each
species has its own density and its own block of ``len(scales) · (l_max + 1)`` components, in
the order of ``species``.

Numerics
--------
- Periodic cells (orthorhombic or triclinic): ρ * ψ is computed exactly as a Fourier series over
  the reciprocal vectors k = 2π (m @ inv(cell).T) of the cell, on a grid of the cell's
  fractional coordinates, and the integral of Eq. 20 is the grid sum times the voxel volume.
  The integral over one periodic cell makes S exactly extensive: an n1×n2×n3 replica gives
  n1 n2 n3 · S on the corresponding grid.
- The structure factor Σ_i exp(-ik·r_i) is obtained in O(N + G log G) by Gaussian gridding (as in
  a Gaussian non-uniform FFT): every atom deposits a narrow Gaussian of width τ = 1.25 voxels
  (truncated where it falls below 1e-16 of its peak) on the grid, the grid is FFT'd, and the
  factor exp(-(σ² + s² - τ²) k²/2) restores the true density and applies the wavelet envelope.
  Aliasing is below exp(-τ²(2π/h)²(1 - τ²/(σ² + s²))/2) ≈ 1e-13 relative, so ρ * ψ is exact to
  ~1e-12 relative at the grid points, for any atom positions.
- Grid spacing: ``grid_spacing`` (Å) at the smallest scale; scale j uses
  grid_spacing · √((σ² + s_j²)/(σ² + s_0²)) (its fields are smooth on the length √(σ² + s_j²)),
  in periodic cells at most 2 · grid_spacing (wide wavelets keep the cell's own wavelengths), and
  at least ``min_points`` points per cell vector. What limits the accuracy is not the convolution
  (exact) but the integral of the modulus: Σ_m |ρ * ψ|² has zeros (generic isolated zeros for
  l = 1, symmetry-imposed ones in crystals) where the square root has cone-shaped cusps, so the
  grid sum converges only as ~h³-h⁴ there. Measured largest relative change of any S[j, l] when
  the spacing is halved (σ = 1.25 Å, s_0 = 2.5 Å, rattled bcc Fe vacancy cells, all 90 S[j, l]):
  16-atom cell: 0.28 -> 0.14 Å: 9e-5, 0.14 -> 0.07 Å: 1e-5, 0.07 -> 0.035 Å: 9e-7;
  127-atom cell: 0.14 -> 0.07 Å: 3e-7; 1023-atom cell (8a0): 0.28 -> 0.14 Å: 7e-7.
  Small cells are the hard case (their fields hold only short lattice wavelengths). The default
  0.14 Å meets the < 1e-6 criterion on cells of >= 128 atoms (the paper's cells have 1024-3456)
  at a cost of ~1 min for 1023 atoms (~10 s at 0.28 Å, enough at that size), one core; use
  0.07 Å where < 1e-6 is required on cells of a few tens of atoms.
- Translations by whole grid steps leave S unchanged to round-off; any other translation changes
  it by the quadrature error above (the deposition itself is translation exact). Rotating a
  periodic cell together with its atoms is exact for any rotation (the grid turns with the cell).
- Isolated structures (pbc False): each scale is evaluated in its own periodic box around the
  atoms, padded by ``padding`` · √(σ² + s_j²) on every side, so that the field of the periodic
  images is negligible: the fraction of the l-th field's integral beyond padding widths is the
  χ-distribution tail P(χ_{l+3} > padding), < 5e-9 for the default padding = 8 and l ≤ 9. The
  voxels have edge exactly h_j and the box centre is snapped to the grid, so the box does not
  move under small displacements. The box is mostly vacuum, so isolated structures cost far more
  than a periodic cell of the same atom count: about (2·padding·√(σ² + s_j²)/h_j)³ grid points
  per scale; use a coarser ``grid_spacing`` (up to 0.33 √(σ² + s_0²)) for clusters.

Defaults (the paper does not state them): ``sigma`` = 1.25 Å, about half the nearest-neighbour
distance of bcc Fe (2.47 Å), so neighbouring Gaussians overlap and ρ is smooth; ``base_scale`` =
2.5 Å, about the nearest-neighbour distance, so 2^0 resolves first-neighbour shells and 2^5 = 80 Å
spans whole cells. With these values a perfect crystal has an almost uniform ρ * ψ and the l > 0
coefficients measure departures from the perfect lattice (defects, strain, disorder).

Per-atom values: S has no per-atom decomposition (the modulus of Eq. 20 mixes every atom's
contribution), so :meth:`WaveletScatteringDescriptor.compute` returns the per-atom *share* S / N on
every row. Its sum over atoms is S exactly, which is all the LDML model (Eq. 14) needs; the rows are
not local descriptors and give uniform "local entropies".

Gradient: :meth:`WaveletScatteringDescriptor.vjp` is the exact derivative of the grid quadrature
(back-propagation through the modulus, the filters and the deposition), about 3x the cost of S;
it matches central finite differences to 1e-6 relative.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.fft as sfft
from ase import Atoms

from ..errors import DescriptorError
from ..structure import periodicity
from .base import DescriptorProvider

#: The paper's nine scales j (Sec. III, after Eq. 21).
PAPER_SCALES: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0, 4.0, 5.0)

#: Width of the deposition Gaussian in units of the largest voxel edge.
_TAU_PER_VOXEL = 1.25
#: Deposition Gaussians are truncated where they fall below this fraction of their peak.
_DEPOSIT_CUTOFF = 1e-16
#: Periodic cells: largest grid spacing of any scale, in units of ``grid_spacing``.
_MAX_SPACING_RATIO = 2.0
#: Largest number of (atom, stencil point) pairs evaluated at once during deposition.
_DEPOSIT_BATCH = 1_000_000


# --------------------------------------------------------------------------- spherical harmonics
def iter_real_solid_harmonics(
    vectors: np.ndarray, l_max: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (l, m, |v|^l Y_lm(v̂)) for every l <= l_max, |m| <= l, order |m| outer, l inner.

    Y_lm are the real spherical harmonics, orthonormal on the unit sphere, so that
    Σ_m Y_lm(a) Y_lm(b) = (2l + 1)/(4π) P_l(a · b). For fixed |m|,
    |v|^l Y_l,±m = N_lm q_l^m(z, |v|²) · Re/Im (x + iy)^|m|, where q_l^m = |v|^(l-m) P_l^(m)(z/|v|)
    is a polynomial that obeys the associated-Legendre recurrence
    (l - m) q_l^m = (2l - 1) z q_(l-1)^m - (l + m - 1) |v|² q_(l-2)^m, q_m^m = (2m - 1)!!.
    Everything is polynomial in x, y, z, hence regular at v = 0, and only a few arrays of the
    size of ``vectors`` are alive at once (the point of this ordering on large FFT grids).

    Parameters
    ----------
    vectors
        Points, shape (..., 3), any unit (the values have that unit to the power l).
    l_max
        Largest degree (>= 0).

    Yields
    ------
    (l, m, values)
        ``values`` is a new array of shape ``vectors.shape[:-1]``.
    """
    v = np.asarray(vectors, dtype=float)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    r2 = x * x + y * y + z * z
    xy_power = np.ones(x.shape, dtype=complex)  # (x + iy)^m
    q_mm = np.ones_like(x)  # q_m^m without its constant (2m - 1)!!, folded into the norm below
    for m in range(l_max + 1):
        if m > 0:
            xy_power *= x + 1j * y
        q_prev = np.zeros_like(x)
        q_cur = q_mm
        for l in range(m, l_max + 1):
            if l == m + 1:
                q_prev, q_cur = q_cur, (2 * m + 1) * z * q_cur
            elif l > m + 1:
                q_prev, q_cur = (
                    q_cur,
                    ((2 * l - 1) * z * q_cur - (l + m - 1) * r2 * q_prev) / (l - m),
                )
            # N_lm (2m - 1)!!, with (2m - 1)!! = (2m)! / (2^m m!), in logs for large l.
            log_norm = (
                0.5
                * (
                    math.log((2 * l + 1) / (4 * math.pi))
                    + math.lgamma(l - m + 1)
                    - math.lgamma(l + m + 1)
                )
                + math.lgamma(2 * m + 1)
                - m * math.log(2.0)
                - math.lgamma(m + 1)
            )
            if m == 0:
                yield l, 0, math.exp(log_norm) * q_cur
            else:
                scale = math.sqrt(2.0) * math.exp(log_norm)
                yield l, m, scale * q_cur * xy_power.real
                yield l, -m, scale * q_cur * xy_power.imag


def real_solid_harmonics(vectors: np.ndarray, l_max: int) -> list[np.ndarray]:
    """All real regular solid harmonics |v|^l Y_lm(v̂), l = 0..l_max, as a list.

    Entry l has shape (2l + 1, ...) with m = -l..l; see :func:`iter_real_solid_harmonics`.
    """
    v = np.asarray(vectors, dtype=float)
    out = [np.zeros((2 * l + 1,) + v.shape[:-1]) for l in range(l_max + 1)]
    for l, m, values in iter_real_solid_harmonics(v, l_max):
        out[l][m + l] = values
    return out


def single_atom_scattering(sigma: float, scale: float, l: int) -> float:
    """Closed-form S[j, l] of one isolated atom (Eq. 20 with our normalisation), dimensionless.

    g_σ * ψ_{j,l}^m = s^l A^-(2l+3)/2 (2π)^-3/2 exp(-r²/2A) r^l Y_lm(r̂) with A = σ² + s², and
    Σ_m Y_lm² = (2l+1)/4π, so S = s^l A^-(2l+3)/2 (2π)^-3/2 √((2l+1)/4π) · 2π (2A)^((l+3)/2)
    Γ((l+3)/2). For l = 0 this is 1/√(4π).

    Parameters
    ----------
    sigma
        Gaussian width σ, Å.
    scale
        Wavelet scale s = base_scale · 2^j, Å.
    l
        Angular degree.
    """
    a = sigma**2 + scale**2
    log_value = (
        l * math.log(scale)
        - 0.5 * (2 * l + 3) * math.log(a)
        - 1.5 * math.log(2 * math.pi)
        + 0.5 * math.log((2 * l + 1) / (4 * math.pi))
        + math.log(2 * math.pi)
        + 0.5 * (l + 3) * math.log(2 * a)
        + math.lgamma(0.5 * (l + 3))
    )
    return math.exp(log_value)


# --------------------------------------------------------------------------- grids
def _grid_shape(box: np.ndarray, spacing: float, min_points: int) -> tuple[int, int, int]:
    """FFT-friendly points per box vector so that each voxel edge is <= ``spacing`` Å."""
    lengths = np.linalg.norm(box, axis=1)
    return tuple(
        int(sfft.next_fast_len(max(min_points, math.ceil(length / spacing)), real=True))
        for length in lengths
    )  # type: ignore[return-value]


def _wavevectors(box: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Cartesian k (1/Å) of the rfftn layout of a grid on ``box``, shape (M0, M1, M2//2+1, 3)."""
    m0 = sfft.fftfreq(shape[0], 1.0 / shape[0])
    m1 = sfft.fftfreq(shape[1], 1.0 / shape[1])
    m2 = np.arange(shape[2] // 2 + 1, dtype=float)
    recip = 2.0 * np.pi * np.linalg.inv(box).T  # rows b_a with a_a · b_b = 2π δ_ab
    return (
        m0[:, None, None, None] * recip[0]
        + m1[None, :, None, None] * recip[1]
        + m2[None, None, :, None] * recip[2]
    )


def deposit_density_hat(
    frac: np.ndarray, box: np.ndarray, shape: Sequence[int], tau: float
) -> np.ndarray:
    """rfftn of Gaussians of width ``tau`` (Å) centred on the atoms, sampled on a periodic grid.

    Equals Σ_i exp(-i k·r_i) exp(-τ² k²/2) · (number of grid points) / V up to aliasing
    exp(-τ² (2π/h - k)²/2) and truncation 1e-16: the gridding step of a Gaussian non-uniform FFT.

    Parameters
    ----------
    frac
        Fractional coordinates of the atoms in ``box``, shape (N, 3).
    box
        Periodic box, rows are the box vectors (3, 3), Å.
    shape
        Grid points per box vector (3,).
    tau
        Deposition width, Å.

    Returns
    -------
    ndarray
        Complex array of shape (M0, M1, M2//2 + 1).
    """
    shape = tuple(int(m) for m in shape)
    grid = np.zeros(int(np.prod(shape)))
    for _, idx, _disp, gauss in _iter_stencils(frac, box, shape, tau):
        grid += np.bincount(idx.ravel(), weights=gauss.ravel(), minlength=grid.size)
    return sfft.rfftn(grid.reshape(shape))


def gather_density_gradient(
    frac: np.ndarray, box: np.ndarray, shape: Sequence[int], tau: float, dfield: np.ndarray
) -> np.ndarray:
    """Adjoint of the deposition: Σ_n dfield[n] ∂D[n]/∂r_i for every atom, shape (N, 3).

    D[n] = Σ_i g_τ(r_n - r_i) is the deposited grid of :func:`deposit_density_hat`, and
    ∂g_τ(r_n - r_i)/∂r_i = g_τ(r_n - r_i) (r_n - r_i)/τ². ``dfield`` is a real grid of ``shape``
    (the derivative of a scalar with respect to D); the result has its unit per Å.
    """
    shape = tuple(int(m) for m in shape)
    flat = np.asarray(dfield, dtype=float).ravel()
    grad = np.zeros((len(frac), 3))
    for atoms, idx, disp, gauss in _iter_stencils(frac, box, shape, tau):
        grad[atoms] = np.einsum("pq,pqa->pa", flat[idx] * gauss, disp) / tau**2
    return grad


def _iter_stencils(
    frac: np.ndarray, box: np.ndarray, shape: tuple[int, int, int], tau: float
) -> Iterator[tuple[slice, np.ndarray, np.ndarray, np.ndarray]]:
    """Batches of (atom slice, flat grid indices (P, Q), r_n - r_i (P, Q, 3) Å, g_τ (P, Q)).

    Every atom's Gaussian is evaluated on the grid points within the radius where it falls
    below 1e-16 of its peak; indices wrap periodically, so a stencil wider than the box adds
    every periodic image. Vectorised over batches of atoms of bounded size.
    """
    n_pts = np.array(shape)
    radius = tau * math.sqrt(2.0 * math.log(1.0 / _DEPOSIT_CUTOFF))
    heights = 1.0 / np.linalg.norm(np.linalg.inv(box), axis=0)  # distance between lattice planes
    half = np.ceil(radius * n_pts / heights).astype(int) + 1
    axes = [np.arange(-h, h + 1) for h in half]
    offsets = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    # Keep the stencil points that can come within `radius` of an atom in its home voxel.
    voxel_diag = float(np.linalg.norm((1.0 / n_pts) @ np.abs(box)))
    cart = (offsets / n_pts) @ box
    offsets = offsets[np.linalg.norm(cart, axis=1) <= radius + voxel_diag]
    norm = (2.0 * np.pi * tau**2) ** -1.5
    scaled = frac * n_pts
    home = np.floor(scaled).astype(np.int64)
    batch = max(1, _DEPOSIT_BATCH // len(offsets))
    strides = np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)
    for start in range(0, len(frac), batch):
        h = home[start : start + batch]
        rel = (h[:, None, :] + offsets[None, :, :] - scaled[start : start + batch, None, :]) / n_pts
        disp = rel @ box
        d2 = np.einsum("pqa,pqa->pq", disp, disp)
        idx = ((h[:, None, :] + offsets[None, :, :]) % n_pts) @ strides
        yield slice(start, start + len(h)), idx, disp, norm * np.exp(-0.5 * d2 / tau**2)


def _restrict_spectrum(hat: np.ndarray, fine: Sequence[int], coarse: Sequence[int]) -> np.ndarray:
    """Low-frequency block of an rfftn spectrum of grid ``fine`` for the smaller grid ``coarse``.

    The result, multiplied by prod(coarse)/prod(fine), is the spectrum of the same band-limited
    periodic function sampled on ``coarse`` (exact when nothing lives beyond the coarse Nyquist).
    """

    def rows(n_fine: int, n_coarse: int) -> np.ndarray:
        m = sfft.fftfreq(n_coarse, 1.0 / n_coarse).astype(int)
        return m % n_fine

    out = hat[
        np.ix_(rows(fine[0], coarse[0]), rows(fine[1], coarse[1]), np.arange(coarse[2] // 2 + 1))
    ]
    return out * (np.prod(coarse) / np.prod(fine))


def _embed_spectrum(hat: np.ndarray, coarse: Sequence[int], fine: Sequence[int]) -> np.ndarray:
    """Place an rfftn spectrum of grid ``coarse`` into the low frequencies of grid ``fine``.

    The adjoint of :func:`_restrict_spectrum` up to its factor prod(coarse)/prod(fine).
    """

    def rows(n_fine: int, n_coarse: int) -> np.ndarray:
        return sfft.fftfreq(n_coarse, 1.0 / n_coarse).astype(int) % n_fine

    out = np.zeros((fine[0], fine[1], fine[2] // 2 + 1), dtype=complex)
    out[
        np.ix_(rows(fine[0], coarse[0]), rows(fine[1], coarse[1]), np.arange(coarse[2] // 2 + 1))
    ] = hat
    return out


# --------------------------------------------------------------------------- the provider
class WaveletScatteringDescriptor(DescriptorProvider):
    """Solid-harmonic wavelet scattering S_{J,L} (paper Eq. 19-21), a global descriptor.

    See the module docstring for the definition, normalisation, numerics and defaults.

    Parameters
    ----------
    sigma
        Standard deviation of the atomic Gaussians of Eq. 19, Å.
    base_scale
        Length of the scale 2^0, Å; scale j has width base_scale · 2^j.
    scales
        The exponents j (the paper's nine by default).
    l_max
        Largest angular degree L (paper: 9).
    grid_spacing
        Grid spacing at the smallest scale, Å (coarser at larger scales, see module docstring).
    min_points
        Smallest number of grid points per cell vector.
    padding
        Isolated structures only: vacuum on each side of the atoms, in units of √(σ² + s_j²).
    species
        Chemical symbols, one density per species (None: every atom in one density).
    workers
        Threads for scipy.fft (not a descriptor parameter: it does not change the values).
    """

    name: ClassVar[str] = "scattering"
    is_local: ClassVar[bool] = False

    def __init__(
        self,
        sigma: float = 1.25,
        base_scale: float = 2.5,
        scales: Sequence[float] = PAPER_SCALES,
        l_max: int = 9,
        grid_spacing: float = 0.14,
        min_points: int = 16,
        padding: float = 8.0,
        species: Sequence[str] | None = None,
        workers: int | None = None,
    ) -> None:
        def positive(value: Any, what: str) -> float:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise DescriptorError(
                    f"scattering: {what} must be a number, got {value!r}"
                ) from None
            if not math.isfinite(number) or number <= 0:
                raise DescriptorError(
                    f"scattering: {what} must be positive and finite, got {value!r}"
                )
            return number

        self.sigma = positive(sigma, "sigma (Å)")
        self.base_scale = positive(base_scale, "base_scale (Å)")
        self.grid_spacing = positive(grid_spacing, "grid_spacing (Å)")
        self.padding = positive(padding, "padding (units of the scale width)")
        try:
            self.scales = tuple(float(j) for j in scales)
        except (TypeError, ValueError):
            raise DescriptorError(
                f"scattering: scales must be a sequence of numbers, got {scales!r}"
            ) from None
        if not self.scales or not all(math.isfinite(j) for j in self.scales):
            raise DescriptorError(
                f"scattering: scales must be a non-empty list of finite exponents j, got {scales!r}"
            )
        if len(set(self.scales)) != len(self.scales):
            raise DescriptorError(f"scattering: scales must be distinct, got {list(self.scales)}")
        if (
            isinstance(l_max, bool)
            or not isinstance(l_max, (int, np.integer))
            or not 0 <= l_max <= 20
        ):
            raise DescriptorError(f"scattering: l_max must be an integer in 0..20, got {l_max!r}")
        self.l_max = int(l_max)
        if (
            isinstance(min_points, bool)
            or not isinstance(min_points, (int, np.integer))
            or min_points < 4
        ):
            raise DescriptorError(
                f"scattering: min_points must be an integer >= 4, got {min_points!r}"
            )
        self.min_points = int(min_points)
        if self.padding < 4:
            raise DescriptorError(
                f"scattering: padding={padding} is too small for isolated structures; use >= 4 "
                "(8 keeps periodic-image cross-talk below 5e-9 for l <= 9)"
            )
        if species is not None:
            if isinstance(species, str) or len(species) == 0:
                raise DescriptorError(
                    f"scattering: species must be a non-empty list of symbols, got {species!r}"
                )
            if len(set(species)) != len(species):
                raise DescriptorError(f"scattering: species must be distinct, got {list(species)}")
        self._species = None if species is None else [str(s) for s in species]
        smallest = self.sigma**2 + (self.base_scale * 2.0 ** min(self.scales)) ** 2
        # The exact-convolution claim needs the wavelet envelope to vanish at the grid's Nyquist
        # frequency: exp(-A π²/(2h²)) < 1e-20 for h <= 0.33 √A.
        if self.grid_spacing > 0.33 * math.sqrt(smallest):
            raise DescriptorError(
                f"scattering: grid_spacing={grid_spacing} Å is too coarse for the narrowest field "
                f"(width √(σ² + s²) = {math.sqrt(smallest):.3f} Å): use <= "
                f"{0.33 * math.sqrt(smallest):.3f} Å (the default 0.14 Å keeps S within ~1e-5 "
                "of converged)"
            )
        self.workers = workers

    # ------------------------------------------------------------------ protocol
    @property
    def params(self) -> dict[str, Any]:
        """Complete parameter set (JSON-serialisable); lengths in Å."""
        return {
            "sigma": self.sigma,
            "base_scale": self.base_scale,
            "scales": list(self.scales),
            "l_max": self.l_max,
            "grid_spacing": self.grid_spacing,
            "min_points": self.min_points,
            "padding": self.padding,
            "species": None if self._species is None else list(self._species),
        }

    @property
    def dim(self) -> int:
        """len(species or [any]) · len(scales) · (l_max + 1) components."""
        n_channels = 1 if self._species is None else len(self._species)
        return n_channels * len(self.scales) * (self.l_max + 1)

    def component_labels(self) -> list[str]:
        """Human-readable name of every component, ``"S[j=0.25,l=3]"`` (prefixed by species)."""
        channels = [""] if self._species is None else [f"{s}:" for s in self._species]
        return [
            f"{c}S[j={j:g},l={l}]"
            for c in channels
            for j in self.scales
            for l in range(self.l_max + 1)
        ]

    def scale_widths(self) -> np.ndarray:
        """Wavelet widths s_j = base_scale · 2^j, Å, shape (len(scales),)."""
        return self.base_scale * 2.0 ** np.asarray(self.scales)

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """Per-atom share S/N for the atoms ``centers``, shape (M, dim) (see module docstring)."""
        total = self._scattering(atoms)[0]
        return np.tile(total / len(atoms), (len(np.asarray(centers)), 1))

    def compute(self, atoms: Atoms) -> np.ndarray:
        """Per-atom share S/N of the global coefficients on every row, shape (N, dim).

        The scattering coefficients have no per-atom decomposition; these rows sum to S exactly
        but are identical for every atom, so they carry no local information.
        """
        return super().compute(atoms)

    def compute_sum(self, atoms: Atoms, chunk_size: int = 20_000) -> np.ndarray:
        """The scattering coefficients S[j, l] of the whole structure, shape (dim,), dimensionless.

        ``chunk_size`` is ignored: the cost is set by the grid, not by N (memory O(grid)).
        """
        self.check_atoms(atoms)
        return self._scattering(atoms)[0]

    # ------------------------------------------------------------------ evaluation
    def _channels(self, atoms: Atoms) -> list[np.ndarray]:
        """Indices of the atoms of each species channel."""
        if self._species is None:
            return [np.arange(len(atoms))]
        symbols = np.array(atoms.get_chemical_symbols())
        return [np.flatnonzero(symbols == s) for s in self._species]

    def vjp(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        """Gradient ∂(w · S)/∂r_k, shape (N, 3), per Å (a gradient, not a force).

        The exact derivative of the grid quadrature that :meth:`compute_sum` evaluates: the
        modulus of Eq. 20 is differentiated as Σ_m f_m ∂f_m / |f|, back-propagated through the
        (linear) wavelet filters to the deposited grid and gathered at the atoms with the
        derivative of the deposition Gaussian. Grid points where Σ_m f_m² = 0 exactly contribute
        the zero subgradient. Costs about three times :meth:`compute_sum`. For isolated
        structures the padded boxes are held fixed (they follow the atoms' bounding box).

        Parameters
        ----------
        w
            Weights, shape (dim,).
        """
        w = self.check_weights(w)
        self.check_atoms(atoms)
        return self._scattering(atoms, w)[1]

    @property
    def has_gradient(self) -> bool:
        """True: :meth:`vjp` is implemented."""
        return True

    def _scattering(
        self, atoms: Atoms, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Eq. 20 for every channel, scale and degree, shape (dim,), and, given ``weights``
        (dim,), the gradient of weights · S (N, 3)."""
        kind = periodicity(atoms)
        block = len(self.scales) * (self.l_max + 1)
        values = np.zeros(self.dim)
        grad = None if weights is None else np.zeros((len(atoms), 3))
        for c, members in enumerate(self._channels(atoms)):
            if len(members) == 0:
                continue
            positions = atoms.positions[members]
            w_block = (
                None
                if weights is None
                else weights[c * block : (c + 1) * block].reshape(len(self.scales), self.l_max + 1)
            )
            if kind == "periodic":
                out, g = self._periodic(positions, atoms.cell.array, w_block)
            else:
                out, g = self._isolated(positions, w_block)
            values[c * block : (c + 1) * block] = out.ravel()
            if grad is not None:
                grad[members] += g
        return values, grad

    def _spacings(self) -> np.ndarray:
        """Grid spacing for every scale, Å (grows like the field width √(σ² + s_j²))."""
        widths2 = self.sigma**2 + self.scale_widths() ** 2
        return self.grid_spacing * np.sqrt(widths2 / widths2.min())

    def _periodic(
        self, positions: np.ndarray, cell: np.ndarray, weights: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """S[j, l] of a periodic cell (len(scales), l_max + 1) and optionally ∂(w·S)/∂r (N, 3).

        One deposition on the finest grid; every scale uses the low-frequency block of its
        spectrum that its (coarser) grid can hold.
        """
        frac = np.linalg.solve(cell.T, positions.T).T % 1.0
        # In a cell the fields of wide wavelets keep the cell's shortest wavelengths, so their
        # grids are not coarsened beyond _MAX_SPACING_RATIO times the finest spacing.
        spacings = np.minimum(self._spacings(), _MAX_SPACING_RATIO * self.grid_spacing)
        shapes = [_grid_shape(cell, h, self.min_points) for h in spacings]
        fine = tuple(int(max(s[a] for s in shapes)) for a in range(3))
        tau = _TAU_PER_VOXEL * float(np.max(np.linalg.norm(cell, axis=1) / np.array(fine)))
        hat_fine = deposit_density_hat(frac, cell, fine, tau)
        out = np.zeros((len(self.scales), self.l_max + 1))
        adjoint_fine = None if weights is None else np.zeros_like(hat_fine)
        for js, (s, shape) in enumerate(zip(self.scale_widths(), shapes, strict=True)):
            hat = _restrict_spectrum(hat_fine, fine, shape)
            w_row = None if weights is None else weights[js]
            out[js], adjoint = self._coefficients(hat, cell, shape, tau, float(s), w_row)
            if adjoint is not None:
                adjoint_fine += _embed_spectrum(adjoint, shape, fine)
        if adjoint_fine is None:
            return out, None
        dfield = sfft.irfftn(adjoint_fine, s=fine, workers=self.workers)
        return out, gather_density_gradient(frac, cell, fine, tau, dfield)

    def _isolated(
        self, positions: np.ndarray, weights: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """S[j, l] of an isolated structure, each scale in its own padded box (and gradient)."""
        centre = 0.5 * (positions.min(axis=0) + positions.max(axis=0))
        extent = positions.max(axis=0) - positions.min(axis=0)
        out = np.zeros((len(self.scales), self.l_max + 1))
        grad = None if weights is None else np.zeros((len(positions), 3))
        for js, (s, h) in enumerate(zip(self.scale_widths(), self._spacings(), strict=True)):
            # Voxels of edge exactly h and a box centre snapped to the grid: the box does not move
            # under small displacements (so vjp is the derivative of S) and translations by whole
            # voxels are exact symmetries.
            width = math.sqrt(self.sigma**2 + s**2)
            shape = _grid_shape(
                np.diag(extent + 2.0 * self.padding * width), float(h), self.min_points
            )
            box = np.diag(np.array(shape) * float(h))
            origin = np.round(centre / h) * h
            frac = (positions - origin) @ np.linalg.inv(box) + 0.5
            tau = _TAU_PER_VOXEL * float(h)
            hat = deposit_density_hat(frac, box, shape, tau)
            w_row = None if weights is None else weights[js]
            out[js], adjoint = self._coefficients(hat, box, shape, tau, float(s), w_row)
            if adjoint is not None:
                dfield = sfft.irfftn(adjoint, s=shape, workers=self.workers)
                grad += gather_density_gradient(frac, box, shape, tau, dfield)
        return out, grad

    def _coefficients(
        self,
        density_hat: np.ndarray,
        box: np.ndarray,
        shape: Sequence[int],
        tau: float,
        s: float,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """S[j, l] for l = 0..l_max at wavelet scale ``s`` (Å) from the deposited spectrum.

        With ``weights`` (l_max + 1,), also returns the rfftn-layout spectrum of
        ∂(Σ_l w_l S[j, l])/∂(deposited grid) before the final inverse FFT (see :meth:`vjp`).
        """
        shape = tuple(int(m) for m in shape)
        a_total = self.sigma**2 + s**2
        if tau**2 >= 0.5 * a_total:
            raise DescriptorError(
                f"scattering: the grid is too coarse for scale {s:g} Å (voxel-width Gaussian "
                f"{tau:.3f} Å vs field width {math.sqrt(a_total):.3f} Å): lower grid_spacing"
            )
        k = _wavevectors(box, shape)
        # ĝ_σ / ĝ_τ · envelope of ψ̂ (Eq. 21 in Fourier space): exp(-(σ² + s² - τ²) k²/2).
        envelope = np.exp(-0.5 * (a_total - tau**2) * np.einsum("...a,...a->...", k, k))
        filtered = density_hat * envelope
        voxel = abs(np.linalg.det(box)) / float(np.prod(shape))
        modulus2 = np.zeros((self.l_max + 1,) + shape)
        for l, _m, y_lm in iter_real_solid_harmonics(k * s, self.l_max):
            # ψ̂_{j,l}^m(k) = (-i)^l (s|k|)^l Y_lm(k̂) exp(-s²k²/2) (Eq. 21 in Fourier space).
            field = sfft.irfftn(filtered * ((-1j) ** l * y_lm), s=shape, workers=self.workers)
            modulus2[l] += field * field
        # Eq. 20: ∫ (Σ_m |ρ * ψ_{j,l}^m|²)^{1/2} dr as the grid sum over one period.
        modulus = np.sqrt(modulus2, out=modulus2)
        out = modulus.reshape(self.l_max + 1, -1).sum(axis=1) * voxel
        if weights is None:
            return out, None
        # ∂|f|/∂f_m = f_m/|f|; the transpose of the filter f_m = F_lm * D is conj(F_lm).
        inverse = np.divide(1.0, modulus, out=np.zeros_like(modulus), where=modulus > 0)
        del modulus, modulus2
        adjoint = np.zeros_like(filtered)
        for l, _m, y_lm in iter_real_solid_harmonics(k * s, self.l_max):
            if weights[l] == 0:
                continue
            multiplier = (-1j) ** l * y_lm
            field = sfft.irfftn(filtered * multiplier, s=shape, workers=self.workers)
            unit = sfft.rfftn(field * inverse[l], workers=self.workers)
            adjoint += (weights[l] * voxel) * unit * envelope * np.conj(multiplier)
        return out, adjoint
