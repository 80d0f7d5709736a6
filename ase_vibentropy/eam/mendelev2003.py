"""The Mendelev et al. 2003 Fe embedded-atom potential in closed form.

M. I. Mendelev, S. Han, D. J. Srolovitz, G. J. Ackland, D. Y. Sun and M. Asta, Phil. Mag. 83,
3977 (2003), "potential 2" (the functions tabulated in ``Fe_mm.eam.fs``). See docs/theory.md,
"The reference potential", for why the closed form, not the table, is the reference.

E = Σ_i F(ρ_i) + ½ Σ_{i≠j} φ(r_ij), ρ_i = Σ_{j≠i} f(r_ij); energies eV, distances Å.

* Pair, r >= 2.0 Å: φ(r) = Σ_k a_k (r_k - r)³ H(r_k - r) over 13 knots from 2.2 to 5.3 Å.
  The 2.7 Å coefficient is negative; copies of the paper that print it positive do not
  reproduce the file.
* Pair, 1.0 <= r < 2.0 Å: φ = exp(B0 + B1 r + B2 r² + B3 r³) (φ and φ' continuous at 2.0 Å,
  φ'' jumps by -18.8 eV/Å² there).
* Pair, r < 1.0 Å: screened Coulomb (Z/r) Σ c_i exp(-d_i r).
* Density f(r) = Σ_k A_k (R_k - r)³ H(R_k - r), R = 2.4, 3.2, 4.2 Å.
* Embedding F(ρ) = -√ρ - 3.5387096579929e-4 ρ².

φ and f are C² at their cubic knots; their third derivatives jump there. Cut-offs: 5.3 Å (pair),
4.2 Å (density).
"""

from __future__ import annotations

import numpy as np

from .calculator import EAMCalculator
from .functions import (
    ExpPolynomial,
    PiecewiseCubic,
    ScreenedCoulomb,
    Spliced,
    SqrtPlusQuadraticEmbedding,
)

#: Pair knots r_k (Å) and coefficients a_k (eV/Å³).
PAIR_KNOTS_A = np.array([2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 3.0, 3.3, 3.7, 4.2, 4.7, 5.3])
PAIR_COEFFICIENTS = np.array([
    -24.028204854115, 11.300691696477, 5.3144495820462, -4.6659532856049, 5.9637758529194,
    -1.7710262006061, 0.85913830768731, -2.1845362968261, 2.6424377007466, -1.0358345370208,
    0.33548264951582, -0.046448582149334, -0.0070294963048689,
])
#: Exponent polynomial B0..B3 of the 1.0-2.0 Å pair bridge (B_n in Å^-n).
PAIR_BRIDGE = (6.4265260576348, 1.7900488524286, -4.5108316729807, 1.0866199373306)
#: Screened Coulomb below 1.0 Å: Z² e²/(4πε0) in eV Å, weights c_i, decay constants d_i (1/Å).
COULOMB_Z2_EV_A = 9734.2365892908
COULOMB_WEIGHTS = (0.1818, 0.5099, 0.2802, 0.02817)
COULOMB_DECAYS = (28.616724320005, 8.4267310396064, 3.6030244464156, 1.8028536321603)
#: Density knots R_k (Å) and coefficients A_k (1/Å³).
DENSITY_KNOTS_A = np.array([2.4, 3.2, 4.2])
DENSITY_COEFFICIENTS = np.array([11.686859407970, -0.014710740098830, 0.47193527075943])
#: Coefficient q of F(ρ) = -√ρ + q ρ², eV.
EMBEDDING_QUADRATIC = -3.5387096579929e-4

#: Largest interaction range, Å (the pair cut-off).
CUTOFF_A = 5.3
#: Equilibrium bcc lattice constant (Å) and mass (amu) of the potential, as in ``Fe_mm.eam.fs``.
A0_A = 2.855324
MASS_AMU = 55.845


def pair_energy() -> Spliced:
    """φ(r), eV, r in Å (three pieces joined at 1.0 and 2.0 Å)."""
    cubic = PiecewiseCubic.truncated_cubics(PAIR_KNOTS_A, PAIR_COEFFICIENTS, start=2.0)
    short = Spliced(
        ScreenedCoulomb(COULOMB_Z2_EV_A, COULOMB_WEIGHTS, COULOMB_DECAYS),
        ExpPolynomial(PAIR_BRIDGE),
        at=1.0,
    )
    return Spliced(short, cubic, at=2.0)


def electron_density() -> PiecewiseCubic:
    """f(r), r in Å (zero beyond 4.2 Å)."""
    return PiecewiseCubic.truncated_cubics(DENSITY_KNOTS_A, DENSITY_COEFFICIENTS, start=0.0)


def embedding_energy() -> SqrtPlusQuadraticEmbedding:
    """F(ρ), eV."""
    return SqrtPlusQuadraticEmbedding(EMBEDDING_QUADRATIC)


def mendelev2003_fe() -> EAMCalculator:
    """A new ASE calculator of the closed-form Mendelev 2003 Fe EAM.

    Energies eV, forces eV/Å, stress eV/Å³, and the exact analytic Hessian (eV/Å²) through
    ``get_hessian`` (sparse, matscipy's convention).
    """
    return EAMCalculator(
        symbol="Fe",
        density=electron_density(),
        embedding=embedding_energy(),
        pair=pair_energy(),
        cutoff=CUTOFF_A,
    )
