"""A single-element embedded-atom calculator with a vectorised sparse analytic Hessian.

For an embedded-atom model

    E = Σ_i F(ρ_i) + ½ Σ_{i≠j} φ(r_ij),   ρ_i = Σ_{j≠i} f(r_ij)

(docs/theory.md, "Hessian of an embedded-atom model") the Hessian splits into:

* a pair-like part from every bond, with the radial function ψ(r) whose derivatives are
  ψ' = φ' + (F'(ρ_i) + F'(ρ_j)) f' and ψ'' = φ'' + (F'(ρ_i) + F'(ρ_j)) f''. Its 3x3 bond block is
  K = ψ'' r̂r̂ᵀ + (ψ'/r)(1 - r̂r̂ᵀ); it enters H_ij as -K and H_ii as +K;
* the embedding curvature Σ_k F''(ρ_k) ∇ρ_k ∇ρ_kᵀ, written as Bᵀ diag(F'') B with the sparse
  (N, 3N) matrix B of density gradients B_{k, 3m+α} = ∂ρ_k/∂x_mα. This is the term that couples
  atoms up to 2 r_c apart; a sparse matrix product builds it without Python loops.

Periodic images are handled by the neighbour list (vesin's, matscipy's for mixed periodicity):
a bond to an image of the atom itself adds equal and opposite entries that cancel, as they must.

The three functions come from :mod:`ase_vibentropy.eam.functions` (closed forms, or splines of
a table); the calculator does not care which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import scipy.sparse as sp
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import atomic_numbers
from matscipy.neighbours import neighbour_list

from ..errors import InvalidStructureError
from ..structure import distinct_symbols
from ..threads import default_threads, threaded_map

#: Bonds whose functions are evaluated at once by :meth:`EAMCalculator.get_half_bond_blocks`
#: (temporaries of ~16 MB each).
BOND_BATCH = 1 << 21

#: Bonds per batch of :meth:`EAMCalculator.get_half_bond_contraction_gradient` and its callers,
#: which hold a few (B, 3, 3) products per batch (~19 MB each).
GRADIENT_BATCH = 1 << 18

#: Verlet skin of the bond list that energies and forces reuse, Å: the list holds the bonds
#: within cut-off + skin and is rebuilt once an atom has moved half the skin since it was built.
BOND_LIST_SKIN_A = 0.3

#: Voigt order of the stress and virial components.
_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


class EAMCalculator(Calculator):
    """ASE calculator of a one-element EAM: energy (eV), per-atom energies, forces (eV/Å),
    stress (eV/Å³), and the analytic Hessian (eV/Å², :meth:`get_hessian`), its on-site blocks
    and their gradients.

    Parameters
    ----------
    symbol
        The element the potential describes; every atom must be of it.
    density, embedding, pair
        f(r), F(ρ) and φ(r): callables returning (value, first, second derivative) with a
        ``third`` method (:mod:`ase_vibentropy.eam.functions`). r in Å, F and φ in eV.
    cutoff
        Largest interaction range, Å (f and φ vanish beyond it).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, symbol: str, density: object, embedding: object, pair: object,
                 cutoff: float, **kwargs) -> None:
        super().__init__(**kwargs)
        if symbol not in atomic_numbers:
            raise ValueError(f"unknown element symbol {symbol!r}")
        self.symbol = symbol
        self.density, self.embedding, self.pair = density, embedding, pair
        self.cutoff = float(cutoff)
        self._bond_list = VerletBondList(BOND_LIST_SKIN_A)

    def __reduce__(self):
        return (type(self), (self.symbol, self.density, self.embedding, self.pair, self.cutoff))

    def _check_species(self, atoms: Atoms) -> None:
        symbols = distinct_symbols(atoms)
        if symbols - {self.symbol}:
            raise InvalidStructureError(
                f"this EAM describes {self.symbol} only, but the structure contains "
                f"{', '.join(sorted(symbols - {self.symbol}))}; use a potential for them"
            )

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        atoms = self.atoms
        self._check_species(atoms)
        n_atoms = len(atoms)
        # each bond once (a bond of an atom to its own image too, once per pair of opposite
        # shifts), the functions a batch of bonds at a time
        i_n, j_n, d_nc, r_n = self._bond_list.bonds(atoms, self.cutoff)
        batches = [slice(k, k + BOND_BATCH) for k in range(0, len(i_n), BOND_BATCH)]
        df_n, dphi_n = np.empty(len(i_n)), np.empty(len(i_n))
        n_threads = default_threads()  # only cells of more than one batch use them

        def densities(b: slice) -> tuple[np.ndarray, np.ndarray]:
            """The batch's parts of ρ and of the pair energies (N,); f' and φ' stored."""
            f, df_n[b], _ = self.density(r_n[b])
            phi, dphi_n[b], _ = self.pair(r_n[b])
            rho = np.zeros(n_atoms)
            pair = np.zeros(n_atoms)
            for end in (i_n[b], j_n[b]):
                rho += np.bincount(end, weights=f, minlength=n_atoms)
                pair += 0.5 * np.bincount(end, weights=phi, minlength=n_atoms)
            return rho, pair

        rho, pair_energies = np.zeros(n_atoms), np.zeros(n_atoms)
        for rho_part, pair_part in threaded_map(densities, batches, n_threads):
            rho += rho_part
            pair_energies += pair_part
        embed, d_embed, _ = self.embedding(rho)
        energies = pair_energies + embed

        def pulls(b: slice) -> tuple[np.ndarray, np.ndarray]:
            """The batch's parts of the forces (N, 3) and of the virial (6,)."""
            # dE/dr of the bond; it pulls i towards j and j towards i
            de_dr = (d_embed[i_n[b]] + d_embed[j_n[b]]) * df_n[b] + dphi_n[b]
            pull_nc = -(de_dr / r_n[b])[:, None] * d_nc[b]
            forces = np.empty((n_atoms, 3))
            for a in range(3):
                forces[:, a] = (np.bincount(j_n[b], weights=pull_nc[:, a], minlength=n_atoms)
                                - np.bincount(i_n[b], weights=pull_nc[:, a], minlength=n_atoms))
            # σ_ab = (1/V) Σ over bonds of d_a ∂E/∂d_b
            return forces, np.array([np.dot(d_nc[b][:, a], pull_nc[:, c]) for a, c in _VOIGT])

        forces = np.zeros((n_atoms, 3))
        virial = np.zeros(len(_VOIGT))
        for forces_part, virial_part in threaded_map(pulls, batches, n_threads):
            forces += forces_part
            virial += virial_part
        self.results["energies"] = energies
        self.results["energy"] = self.results["free_energy"] = float(energies.sum())
        self.results["forces"] = forces
        if atoms.cell.rank == 3 and atoms.pbc.all():
            self.results["stress"] = -virial / atoms.get_volume()

    def get_hessian(
        self, atoms: Atoms, format: str = "sparse", divide_by_masses: bool = False
    ) -> sp.csr_matrix | np.ndarray:
        """Hessian ∂²E/∂x_iα∂x_jβ of ``atoms``, eV/Å² (eV/(Å² amu) with ``divide_by_masses``).

        Parameters
        ----------
        atoms : Atoms
            N atoms of :attr:`symbol`.
        format : {"sparse", "dense"}
            CSR matrix or dense array, shape (3N, 3N), atom-major (3i + α), as matscipy's.
        divide_by_masses : bool
            Return the dynamical matrix M^-1/2 H M^-1/2 instead.
        """
        self._check_species(atoms)
        hessian = next(self.iter_hessian_rows(atoms, [np.arange(len(atoms))]))
        if divide_by_masses:
            scale = sp.diags(np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3))
            hessian = (scale @ hessian @ scale).tocsr()
        return hessian.toarray() if format == "dense" else hessian

    def _bonds(self, atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Every directed bond within the cut-off and the potential's terms on it.

        Returns ``i``, ``j`` (M,), ``D`` = r_j + shift - r_i (M, 3), Å, ``d`` = |D| (M,), Å, and
        per bond f', f'', φ, φ', φ'' and per atom ρ, F(ρ), F'(ρ), F''(ρ) (keys ``df``, ``ddf``,
        ``phi``, ``dphi``, ``ddphi``, ``rho``, ``embed``, ``d_embed``, ``dd_embed``). The
        functions are evaluated once per bond (on a half list, the reverse bonds mirrored).
        """
        i_h, j_h, d_hc, r_h = _half_bonds(atoms, self.cutoff)
        n_atoms = len(atoms)
        f_h, df_h, ddf_h = self.density(r_h)
        phi_h, dphi_h, ddphi_h = self.pair(r_h)
        i_n, j_n = np.concatenate([i_h, j_h]), np.concatenate([j_h, i_h])
        rho_i = np.bincount(i_n, weights=np.concatenate([f_h, f_h]), minlength=n_atoms)
        embed_i, d_embed_i, dd_embed_i = self.embedding(rho_i)
        terms = {name: np.concatenate([value, value]) for name, value in
                 (("df", df_h), ("ddf", ddf_h), ("phi", phi_h), ("dphi", dphi_h), ("ddphi", ddphi_h))}
        terms.update(rho=rho_i, embed=embed_i, d_embed=d_embed_i, dd_embed=dd_embed_i)
        return i_n, j_n, np.concatenate([d_hc, -d_hc]), np.concatenate([r_h, r_h]), terms

    def _onsite_terms(self, atoms: Atoms) -> dict[str, np.ndarray]:
        """Bond and atom quantities of the on-site blocks, and the blocks themselves.

        One neighbour-list pass shared by :meth:`get_onsite_hessian` and
        :meth:`get_onsite_log_det_gradient`. Bonds of an atom to its own periodic images are
        left out (they do not change with its position and cancel in the full Hessian); the
        densities keep them. Per bond (M,): ``i``, ``j``, ``r``, ``unit`` (M, 3), ``df``,
        ``ddf``, ``dphi``, ``ddphi``, ``psi1`` = ψ', ``psi2`` = ψ''. Per i-j atom pair (P,):
        ``pair_i``, ``pair_j``, ``pair_of_bond`` (M,), ``pair_gradient`` = ∇_iρ_j (P, 3), summed
        over the images of i that j sees. Per atom: ``rho``, ``d_embed``, ``dd_embed``,
        ``own_gradient`` = ∇_iρ_i (N, 3) and ``blocks`` = H_ii (N, 3, 3), eV/Å².
        """
        self._check_species(atoms)
        n_atoms = len(atoms)
        i_n, j_n, dr_nc, r_n, t = self._bonds(atoms)
        other = i_n != j_n
        i_n, j_n, r_n = i_n[other], j_n[other], r_n[other]
        unit_nc = dr_nc[other] / r_n[:, None]
        df_n, ddf_n = t["df"][other], t["ddf"][other]
        d_embed_i, dd_embed_i = t["d_embed"], t["dd_embed"]
        embed_sum_n = d_embed_i[i_n] + d_embed_i[j_n]
        dphi_n, ddphi_n = t["dphi"][other], t["ddphi"][other]
        psi1 = dphi_n + embed_sum_n * df_n
        psi2 = ddphi_n + embed_sum_n * ddf_n
        # K = ψ'' r̂r̂ᵀ + (ψ'/r)(1 - r̂r̂ᵀ) = (ψ'' - ψ'/r) r̂r̂ᵀ + (ψ'/r) 1
        tangential_n = psi1 / r_n
        blocks = _symmetric_block_sums(i_n, psi2 - tangential_n, unit_nc, n_atoms)
        blocks += (np.bincount(i_n, weights=tangential_n, minlength=n_atoms)[:, None, None]
                   * np.eye(3))
        # g = f'(r_ij) r̂_ij (r̂_ij from i to j) = -∇_i ρ_j, summed over the images of i that j
        # sees; only products of two such terms enter (g gᵀ here, g and ∂g/∂d in the gradient),
        # so the sign cancels.
        # int64: i·N + j overflows int32 beyond 46,340 atoms
        if _bonds_are_pairs(atoms, self.cutoff):  # one bond per atom pair: nothing to sum
            pair_of_bond = np.arange(len(i_n))
            pair_gradient, pair_i, pair_j = df_n[:, None] * unit_nc, i_n, j_n
        else:
            pair_key, pair_of_bond = np.unique(i_n.astype(np.int64) * n_atoms + j_n, return_inverse=True)
            pair_gradient = _sum_by_atom(pair_of_bond, df_n[:, None] * unit_nc, len(pair_key))
            pair_i, pair_j = np.divmod(pair_key, n_atoms)
        blocks += _symmetric_block_sums(pair_i, dd_embed_i[pair_j], pair_gradient, n_atoms)
        # ∇_i ρ_i = Σ_j ∂f(r_ij)/∂x_i = -Σ_j f'(r_ij) r̂_ij
        own_gradient = -_sum_by_atom(i_n, df_n[:, None] * unit_nc, n_atoms)
        blocks += dd_embed_i[:, None, None] * own_gradient[:, :, None] * own_gradient[:, None, :]
        return {"i": i_n, "j": j_n, "r": r_n, "unit": unit_nc, "df": df_n, "ddf": ddf_n,
                "dphi": dphi_n, "ddphi": ddphi_n, "psi1": psi1, "psi2": psi2,
                "pair_i": pair_i, "pair_j": pair_j, "pair_of_bond": pair_of_bond,
                "pair_gradient": pair_gradient, "rho": t["rho"], "d_embed": d_embed_i,
                "dd_embed": dd_embed_i, "own_gradient": own_gradient, "blocks": blocks}

    def get_half_bond_blocks(self, atoms: Atoms, n_threads: int = 1) -> dict[str, np.ndarray]:
        """The on-site blocks and the pair-like bond blocks, from each bond listed once.

        The memory-lean form of :meth:`get_bond_blocks` (64 bytes per bond kept, functions
        evaluated :data:`BOND_BATCH` bonds at a time, on ``n_threads`` threads) for structures
        in which every bond is a pair: no atom within the cut-off of two images of another
        (plane spacings of the periodic axes above 2 r_c, or an isolated structure). Returns
        ``onsite`` = H_ii (N, 3, 3), eV/Å², and per bond n = {i, j} (M,) ``i``, ``j``,
        ``unit`` = r̂ from i to j (M, 3) and the coefficients of K_n = ``radial`` r̂r̂ᵀ +
        ``tangential`` 1, eV/Å² (the same block seen from either end), ``r`` = |r_j - r_i|
        (M,), Å, and per atom ``rho`` = ρ_i (N,) and ``own_gradient`` = ∇_iρ_i (N, 3), 1/Å (for
        :meth:`get_half_bond_contraction_gradient`). H_ii sums K_n +
        F''(ρ_j) f'² r̂r̂ᵀ over the bonds of i and adds F''(ρ_i) ∇_iρ_i ∇_iρ_iᵀ, as
        :meth:`get_onsite_hessian`. The batches are reduced in order: the result does not
        depend on ``n_threads``.

        Raises
        ------
        InvalidStructureError
            Some atom sees two images of another: repeat the cell, or use :meth:`get_bond_blocks`.
        """
        self._check_species(atoms)
        if not _bonds_are_pairs(atoms, self.cutoff):
            raise InvalidStructureError(
                "get_half_bond_blocks needs every plane spacing of the periodic axes above twice "
                f"the cut-off ({2 * self.cutoff:.3g} Å): repeat the cell, or use get_bond_blocks"
            )
        n_atoms = len(atoms)
        i_n, j_n, d_nc, r_n = _half_bonds(atoms, self.cutoff)
        unit_nc = d_nc / r_n[:, None]
        del d_nc
        n_bonds = len(i_n)
        batches = [slice(k, k + BOND_BATCH) for k in range(0, n_bonds, BOND_BATCH)]
        df_n, ddf_n, dphi_n, ddphi_n = (np.empty(n_bonds) for _ in range(4))

        def evaluate(b: slice) -> np.ndarray:
            """The functions on the batch's bonds (stored), and its part of ρ (N,)."""
            f, df_n[b], ddf_n[b] = self.density(r_n[b])
            _, dphi_n[b], ddphi_n[b] = self.pair(r_n[b])
            return (np.bincount(i_n[b], weights=f, minlength=n_atoms)
                    + np.bincount(j_n[b], weights=f, minlength=n_atoms))

        rho = np.zeros(n_atoms)
        for part in threaded_map(evaluate, batches, n_threads):
            rho += part
        _, d_embed, dd_embed = self.embedding(rho)
        # in place: ψ'/r into dphi_n (tangential), ψ'' - ψ'/r into ddphi_n (radial)
        tangential_n, radial_n = dphi_n, ddphi_n

        def accumulate(b: slice) -> tuple[np.ndarray, np.ndarray]:
            """The batch's K_n (stored), and its parts of H_ii (N, 3, 3) and ∇_iρ_i (N, 3)."""
            i_b, j_b, u_b, df_b = i_n[b], j_n[b], unit_nc[b], df_n[b]
            embed_sum = d_embed[i_b] + d_embed[j_b]
            tangential_n[b] = (dphi_n[b] + embed_sum * df_b) / r_n[b]
            radial_n[b] = ddphi_n[b] + embed_sum * ddf_n[b] - tangential_n[b]
            square = df_b * df_b
            at_i = radial_n[b] + dd_embed[j_b] * square  # along r̂r̂ᵀ, in H_ii
            at_j = radial_n[b] + dd_embed[i_b] * square  # and in H_jj
            onsite = np.empty((n_atoms, 3, 3))
            for p in range(3):
                for q in range(p, 3):
                    uu = u_b[:, p] * u_b[:, q]
                    onsite[:, p, q] = onsite[:, q, p] = (
                        np.bincount(i_b, weights=at_i * uu, minlength=n_atoms)
                        + np.bincount(j_b, weights=at_j * uu, minlength=n_atoms))
            diagonal = (np.bincount(i_b, weights=tangential_n[b], minlength=n_atoms)
                        + np.bincount(j_b, weights=tangential_n[b], minlength=n_atoms))
            onsite[:, range(3), range(3)] += diagonal[:, None]
            own_gradient = np.empty((n_atoms, 3))  # ∇_iρ_i = -Σ_j f'(r_ij) r̂_ij
            for p in range(3):
                pull = df_b * u_b[:, p]
                own_gradient[:, p] = (np.bincount(j_b, weights=pull, minlength=n_atoms)
                                      - np.bincount(i_b, weights=pull, minlength=n_atoms))
            return onsite, own_gradient

        onsite = np.zeros((n_atoms, 3, 3))
        own_gradient = np.zeros((n_atoms, 3))
        for onsite_part, own_part in threaded_map(accumulate, batches, n_threads):
            onsite += onsite_part
            own_gradient += own_part
        onsite += dd_embed[:, None, None] * own_gradient[:, :, None] * own_gradient[:, None, :]
        return {"onsite": onsite, "i": i_n, "j": j_n, "unit": unit_nc, "r": r_n,
                "radial": radial_n, "tangential": tangential_n, "rho": rho,
                "own_gradient": own_gradient}

    def get_half_bond_contraction_gradient(
        self, blocks: dict[str, np.ndarray], onsite_weights: np.ndarray,
        bond_weights: Callable[[slice], np.ndarray] | None = None, n_threads: int = 1,
    ) -> np.ndarray:
        """:meth:`get_block_contraction_gradient` from each bond listed once, in batches.

        Gradient of L = Σ_i tr(W_i H_ii) + Σ_n tr(P_n K_n) at frozen W and P, shape (N, 3), in
        the units of W times eV/Å³, over the bonds n = {i, j} of ``blocks`` (the
        :meth:`get_half_bond_blocks` result of the structure), :data:`GRADIENT_BATCH` bonds at
        a time on ``n_threads`` threads and reduced in order, so memory stays a few floats per
        bond and the result does not depend on ``n_threads``.

        Parameters
        ----------
        blocks
            :meth:`get_half_bond_blocks` of the structure.
        onsite_weights
            W, symmetric, shape (N, 3, 3).
        bond_weights
            ``bond_weights(batch)`` gives P of the bonds ``blocks["i"][batch]``, symmetric,
            shape (B, 3, 3): the weight of K_n seen from both ends, summed. None: no P term.
        n_threads
            Threads over the batches.
        """
        i_n, j_n, unit_nc, r_n = blocks["i"], blocks["j"], blocks["unit"], blocks["r"]
        radial_n, tangential_n, rho = blocks["radial"], blocks["tangential"], blocks["rho"]
        own_gradient = blocks["own_gradient"]
        n_atoms, n_bonds = len(rho), len(i_n)
        weights9 = np.ascontiguousarray(onsite_weights, dtype=float).reshape(n_atoms, 9)
        _, d_embed, dd_embed = self.embedding(rho)
        ddd_embed = self.embedding.third(rho)
        g_own = np.einsum("iab,ib->ia", weights9.reshape(n_atoms, 3, 3), own_gradient)
        df_n = np.empty(n_bonds)

        def batch_part(b: slice) -> tuple[np.ndarray, np.ndarray]:
            """The batch's pulls on the atoms (N, 3) but those through ∂ρ/∂d, and its part of
            ∂L/∂ρ (N,)."""
            i_b, j_b, u, r = i_n[b], j_n[b], unit_nc[b], r_n[b]
            _, df, ddf = self.density(r)
            df_n[b] = df
            dddf, dddphi = self.density.third(r), self.pair.third(r)
            radial, tangential = radial_n[b], tangential_n[b]
            psi1, psi2 = tangential * r, radial + tangential  # ψ', ψ''
            psi3 = dddphi + (d_embed[i_b] + d_embed[j_b]) * dddf
            w_i = np.take(weights9, i_b, axis=0).reshape(-1, 3, 3)
            w_j = np.take(weights9, j_b, axis=0).reshape(-1, 3, 3)
            carried = w_i + w_j  # H_ii and H_jj both hold K_n
            if bond_weights is not None:
                carried += bond_weights(b)
            g_u = np.einsum("nab,nb->na", carried, u)
            u_g_u = np.einsum("na,na->n", u, g_u)
            trace_g = np.einsum("naa->n", carried)
            d_radial = psi3 - psi2 / r + psi1 / r**2  # d/dr (ψ'' - ψ'/r)
            d_tangential = psi2 / r - psi1 / r**2  # d/dr (ψ'/r)
            pull = (d_radial * u_g_u + d_tangential * trace_g)[:, None] * u
            pull += (2.0 * radial / r)[:, None] * (g_u - u_g_u[:, None] * u)
            via_embed_sum = (ddf - df / r) * u_g_u + (df / r) * trace_g
            d_rho = (np.bincount(i_b, weights=via_embed_sum * dd_embed[i_b], minlength=n_atoms)
                     + np.bincount(j_b, weights=via_embed_sum * dd_embed[j_b], minlength=n_atoms))
            g = df[:, None] * u  # ∇_jρ_i = -∇_iρ_j = f' r̂ (r̂ from i to j)
            w_i_g, w_j_g = np.einsum("nab,nb->na", w_i, g), np.einsum("nab,nb->na", w_j, g)
            d_rho += (np.bincount(j_b, weights=ddd_embed[j_b] * np.einsum("na,na->n", g, w_i_g),
                                  minlength=n_atoms)
                      + np.bincount(i_b, weights=ddd_embed[i_b] * np.einsum("na,na->n", g, w_j_g),
                                    minlength=n_atoms))
            # ∂(f' r̂)/∂d = f'' r̂r̂ᵀ + (f'/r)(1 - r̂r̂ᵀ), applied to the gradient terms of both ends
            vector = (2.0 * dd_embed[j_b])[:, None] * (w_i_g + g_own[j_b])
            vector += (2.0 * dd_embed[i_b])[:, None] * (w_j_g - g_own[i_b])
            along = np.einsum("na,na->n", u, vector)
            pull += ((ddf - df / r) * along)[:, None] * u + (df / r)[:, None] * vector
            return (_sum_by_atom(j_b, pull, n_atoms) - _sum_by_atom(i_b, pull, n_atoms)), d_rho

        batches = [slice(k, k + GRADIENT_BATCH) for k in range(0, n_bonds, GRADIENT_BATCH)]
        gradient = np.zeros((n_atoms, 3))
        d_rho = ddd_embed * np.einsum("ia,ia->i", own_gradient, g_own)
        for gradient_part, d_rho_part in threaded_map(batch_part, batches, n_threads):
            gradient += gradient_part
            d_rho += d_rho_part

        def density_pulls(b: slice) -> np.ndarray:
            """∂L/∂ρ_i ∂ρ_i/∂d + ∂L/∂ρ_j ∂ρ_j/∂d = (∂L/∂ρ_i + ∂L/∂ρ_j) f' r̂ per bond."""
            i_b, j_b = i_n[b], j_n[b]
            pull = ((d_rho[i_b] + d_rho[j_b]) * df_n[b])[:, None] * unit_nc[b]
            return _sum_by_atom(j_b, pull, n_atoms) - _sum_by_atom(i_b, pull, n_atoms)

        for part in threaded_map(density_pulls, batches, n_threads):
            gradient += part
        return gradient

    def get_onsite_hessian(self, atoms: Atoms) -> np.ndarray:
        """Diagonal 3x3 blocks H_ii = ∂²E/∂x_i∂x_iᵀ of the Hessian, shape (N, 3, 3), eV/Å².

        O(N) in time and memory (a few floats per bond), without assembling the (3N, 3N)
        matrix: the pair-like part is Σ_j K_ij over the bonds of i, and the embedding part is
        F''(ρ_i) ∇_iρ_i ∇_iρ_iᵀ + Σ_j F''(ρ_j) ∇_iρ_j ∇_iρ_jᵀ (the density of i moves with all
        its bonds, that of a neighbour j with its bonds to i and to the periodic images of i).
        Bonds of an atom to its own periodic images do not change with its position and are
        left out, as they cancel in the full Hessian.
        """
        return self._onsite_terms(atoms)["blocks"]

    def get_onsite_log_det_gradient(
        self, atoms: Atoms, weights: np.ndarray, return_blocks: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Gradient of Σ_i weights_i ln |det H_ii| with respect to the positions, (N, 3), per Å.

        ``weights`` has shape (N,). d ln det H = tr(H⁻¹ dH), so this is the gradient of
        Σ_i tr(G_i H_ii) at frozen G_i = weights_i H_ii⁻¹ (:meth:`get_block_contraction_gradient`).
        With ``return_blocks`` also the blocks H_ii (N, 3, 3), computed on the way.
        """
        o = self._onsite_terms(atoms)
        frozen = np.asarray(weights, dtype=float)[:, None, None] * np.linalg.inv(o["blocks"])
        gradient = self._contraction_gradient(o, frozen)
        return (gradient, o["blocks"]) if return_blocks else gradient

    def get_bond_blocks(self, atoms: Atoms) -> dict[str, np.ndarray]:
        """The on-site blocks and the pair-like bond blocks of the Hessian, one neighbour pass.

        Returns ``onsite`` = H_ii (N, 3, 3), eV/Å², and per directed bond n = (i -> j) within
        the cut-off (bonds of an atom to its own images left out; every image of j is its own
        bond) ``i``, ``j`` (M,), ``unit`` = r̂ (M, 3) and the coefficients of
        K_n = ``radial`` r̂r̂ᵀ + ``tangential`` 1 (M,), eV/Å², with radial = ψ'' - ψ'/r and
        tangential = ψ'/r: the part of H_ij = -K_n - (embedding terms) one bond carries
        (module docstring). ``terms`` is the neighbour pass they came from, which
        :meth:`get_block_contraction_gradient` reuses (same bonds, same order).
        """
        o = self._onsite_terms(atoms)
        tangential = o["psi1"] / o["r"]
        return {"onsite": o["blocks"], "i": o["i"], "j": o["j"], "unit": o["unit"],
                "radial": o["psi2"] - tangential, "tangential": tangential, "terms": o}

    def get_block_contraction_gradient(
        self, atoms: Atoms, onsite_weights: np.ndarray, bond_weights: np.ndarray | None = None,
        bond_blocks: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Gradient of L = Σ_i tr(W_i H_ii) + Σ_n tr(P_n K_n) at frozen W and P, (N, 3), in
        the units of W times eV/Å³ (per Å for dimensionless W H).

        ``onsite_weights`` W (N, 3, 3) and ``bond_weights`` P (M, 3, 3), symmetric, are
        constants; H_ii and the bond blocks K_n are those of :meth:`get_bond_blocks`, whose
        result ``bond_blocks`` should be passed along with P: its neighbour pass is reused, so
        the bonds are in the order P was built in (a new pass need not list them in that order). Any smooth function of the blocks has its gradient through this
        contraction with its derivatives (d ln det H = tr(H⁻¹ dH), ...). The derivative needs
        the third derivatives of the potential's functions (piecewise constant for cubic
        splines) and, through ψ' = φ' + (F'_i + F'_j) f' and F''(ρ), the chain rule through
        every density. Checked against finite differences.
        """
        if bond_weights is not None and bond_blocks is None:
            raise ValueError(
                "bond_weights are per bond of a neighbour pass: pass the get_bond_blocks result "
                "they were built from as bond_blocks"
            )
        o = self._onsite_terms(atoms) if bond_blocks is None else bond_blocks["terms"]
        return self._contraction_gradient(o, np.asarray(onsite_weights, dtype=float), bond_weights)

    def _contraction_gradient(
        self, o: dict[str, np.ndarray], g_icc: np.ndarray, bond_weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Gradient of Σ_i tr(G_i H_ii) + Σ_n tr(P_n K_n) at frozen G (N, 3, 3) and P (M, 3, 3)
        (:meth:`get_block_contraction_gradient`), from the terms of :meth:`_onsite_terms`.

        H_ii is a sum over the bonds n of i of K_n, over the neighbours j of F''(ρ_j) g gᵀ
        (g = ∇_iρ_j) and F''(ρ_i) ∇_iρ_i ∇_iρ_iᵀ, so every bond n carries the matrix
        G_{i(n)} + P_n in the pair-like part.
        """
        n_atoms = len(o["rho"])
        i_n, j_n, r_n, unit_nc = o["i"], o["j"], o["r"], o["unit"]
        df_n, ddf_n, psi1, psi2 = o["df"], o["ddf"], o["psi1"], o["psi2"]
        d_embed_i, dd_embed_i = o["d_embed"], o["dd_embed"]
        ddd_embed_i = self.embedding.third(o["rho"])
        dddf_n = self.density.third(r_n)
        dddphi_n = self.pair.third(r_n)
        psi3 = dddphi_n + (d_embed_i[i_n] + d_embed_i[j_n]) * dddf_n
        bond_g = g_icc[i_n] if bond_weights is None else g_icc[i_n] + bond_weights

        g_unit_nc = np.einsum("nab,nb->na", bond_g, unit_nc)
        u_g_u = np.einsum("na,na->n", unit_nc, g_unit_nc)
        trace_g = np.trace(bond_g, axis1=1, axis2=2)
        radial_part = psi2 - psi1 / r_n
        d_radial = psi3 - psi2 / r_n + psi1 / r_n**2  # d/dr (ψ'' - ψ'/r)
        d_tangential = psi2 / r_n - psi1 / r_n**2  # d/dr (ψ'/r)
        bond_nc = (d_radial * u_g_u + d_tangential * trace_g)[:, None] * unit_nc
        bond_nc += (2.0 * radial_part / r_n)[:, None] * (g_unit_nc - u_g_u[:, None] * unit_nc)
        # ∂L/∂ρ_k, collected from every term that holds F'(ρ_k) or F''(ρ_k)
        via_embed_sum = (ddf_n - df_n / r_n) * u_g_u + (df_n / r_n) * trace_g
        dL_drho = (np.bincount(i_n, weights=via_embed_sum * dd_embed_i[i_n], minlength=n_atoms)
                   + np.bincount(j_n, weights=via_embed_sum * dd_embed_i[j_n], minlength=n_atoms))

        def d_gradient_times(vector_nc: np.ndarray) -> np.ndarray:
            """[f'' r̂r̂ᵀ + (f'/r)(1 - r̂r̂ᵀ)] v per bond: ∂(f' r̂)/∂d applied to v."""
            along = np.einsum("na,na->n", unit_nc, vector_nc)
            return ((ddf_n - df_n / r_n) * along)[:, None] * unit_nc + (df_n / r_n)[:, None] * vector_nc

        pair_i, pair_j, pair_gradient = o["pair_i"], o["pair_j"], o["pair_gradient"]
        g_pair = np.einsum("pab,pb->pa", g_icc[pair_i], pair_gradient)
        pair_curvature = np.einsum("pa,pa->p", pair_gradient, g_pair)
        dL_drho += np.bincount(pair_j, weights=ddd_embed_i[pair_j] * pair_curvature, minlength=n_atoms)
        bond_nc += (2.0 * dd_embed_i[j_n])[:, None] * d_gradient_times(g_pair[o["pair_of_bond"]])

        own_gradient = o["own_gradient"]
        g_own = np.einsum("iab,ib->ia", g_icc, own_gradient)
        dL_drho += ddd_embed_i * np.einsum("ia,ia->i", own_gradient, g_own)
        bond_nc -= (2.0 * dd_embed_i[i_n])[:, None] * d_gradient_times(g_own[i_n])

        bond_nc += (dL_drho[i_n] * df_n)[:, None] * unit_nc  # ∂ρ_i/∂d = f' r̂ for bonds of i
        # d = x_j - x_i: a bond pulls j by +v and i by -v
        return _sum_by_atom(j_n, bond_nc, n_atoms) - _sum_by_atom(i_n, bond_nc, n_atoms)

    def iter_hessian_rows(self, atoms: Atoms, batches: Iterable[np.ndarray]) -> Iterator[sp.csr_matrix]:
        """Rows of the Hessian (eV/Å²) of the atoms of each batch, one CSR matrix per batch.

        For a batch of M atom indices the matrix has shape (3M, 3N), row 3m + α holding
        ∂²E/∂x_{b_m α}∂x for the m-th atom b_m of the batch. The neighbour list and the
        per-bond terms are computed once for all batches, so memory is that of the largest
        batch's rows (about 340 blocks of 3x3 per bcc-Fe atom) plus a few floats per bond.
        Parameters
        ----------
        atoms
            N atoms of the potential's element.
        batches
            Arrays of atom indices, shape (M_b,) each.
        """
        self._check_species(atoms)
        n_atoms = len(atoms)
        i_n, j_n, dr_nc, r_n, t = self._bonds(atoms)
        unit_nc = dr_nc / r_n[:, None]

        df_n, d_embed_i, dd_embed_i = t["df"], t["d_embed"], t["dd_embed"]
        embed_sum_n = d_embed_i[i_n] + d_embed_i[j_n]
        d_psi_n = t["dphi"] + embed_sum_n * df_n
        dd_psi_n = t["ddphi"] + embed_sum_n * t["ddf"]

        # B_{k, 3m+α} = ∂ρ_k/∂x_mα: +f' r̂ on the neighbour, -f' r̂ on the centre. Stored
        # transposed (3N, N), so that the rows of a batch are a row slice.
        grad_nc = df_n[:, None] * unit_nc
        cols = np.repeat(np.concatenate([i_n, i_n]), 3)
        rows = (3 * np.concatenate([j_n, i_n])[:, None] + np.arange(3)).ravel()
        values = np.concatenate([grad_nc, -grad_nc]).ravel()
        gradients_t = sp.csr_matrix((values, (rows, cols)), shape=(3 * n_atoms, n_atoms))
        gradients_t.sum_duplicates()
        weighted = (gradients_t @ sp.diags(dd_embed_i)).T.tocsr()  # F''(ρ_k) ∂ρ_k/∂x, (N, 3N)

        for batch in batches:
            batch = np.asarray(batch, dtype=np.intp)
            position = np.full(n_atoms, -1, dtype=np.intp)
            position[batch] = np.arange(len(batch))
            mine = position[i_n] >= 0
            row_of_bond = position[i_n[mine]]
            # K = ψ'' r̂r̂ᵀ + (ψ'/r)(1 - r̂r̂ᵀ) per bond of the batch's atoms
            outer_ncc = unit_nc[mine, :, None] * unit_nc[mine, None, :]
            bond_ncc = dd_psi_n[mine, None, None] * outer_ncc + (d_psi_n[mine] / r_n[mine])[
                :, None, None
            ] * (np.eye(3) - outer_ncc)
            pair = _block_matrix(
                np.concatenate([row_of_bond, row_of_bond]),
                np.concatenate([j_n[mine], i_n[mine]]),
                np.concatenate([-bond_ncc, bond_ncc]),
                (len(batch), n_atoms),
            )
            batch_rows = (3 * batch[:, None] + np.arange(3)).ravel()
            embedding = gradients_t[batch_rows] @ weighted
            yield (pair + embedding).tocsr()


def _half_bonds(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One of the two directions of every bond within ``cutoff`` Å: ``i``, ``j`` (M,), ``D`` =
    r_j + shift - r_i (M, 3), Å, and ``d`` = |D| (M,), Å.

    vesin's half list for fully periodic and isolated structures (half the work of a full
    list); matscipy's full list, halved, for mixed periodicity (slabs, wires; the vesin versions
    the package accepts do not all take per-axis periodicity). Bonds of an atom to its own
    images come once per pair of opposite shifts.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.all() or not pbc.any():
        from vesin import NeighborList

        periodic = bool(pbc.all())
        box = np.ascontiguousarray(atoms.cell.array, dtype=float) if periodic else np.zeros((3, 3))
        i, j, D, d = NeighborList(cutoff=float(cutoff), full_list=False).compute(
            points=np.ascontiguousarray(atoms.positions, dtype=float), box=box, periodic=periodic,
            quantities="ijDd",
        )
        return i.astype(np.intp), j.astype(np.intp), D, d
    if atoms.cell.rank < 3:
        raise InvalidStructureError(
            f"a structure periodic along some axes only (pbc={pbc.tolist()}) needs three cell "
            "vectors (give the open axes a vacuum length), or use pbc=False"
        )
    i, j, S, D, d = neighbour_list("ijSDd", atoms, cutoff)
    # keep i < j, and of the two opposite images of a self-bond the one with the first
    # non-zero shift component positive
    first = np.take_along_axis(S, np.argmax(S != 0, axis=1)[:, None], axis=1)[:, 0]
    keep = (i < j) | ((i == j) & (first > 0))
    return i[keep].astype(np.intp), j[keep].astype(np.intp), D[keep], d[keep]


class VerletBondList:
    """The bonds of :func:`_half_bonds` from a Verlet list, for repeated calls on moving atoms.

    The list holds every bond within cut-off + ``skin`` (Å) with its periodic shift; each call
    recomputes the bond vectors from the current positions and keeps those shorter than the
    cut-off. While no atom has moved more than ``skin / 2`` since the list was built, no pair
    can have come from beyond cut-off + skin to within the cut-off, so the bonds are exactly
    those of a fresh list; any larger move, a new cell, periodicity, atom count or cut-off
    rebuilds it. Optimizers, dimer searches and MD, which move atoms a little per force call,
    rebuild it rarely. Every bond is stored in one canonical direction and order (i <= j, sorted
    by i, j and shift; a bond of an atom to its own image with its first non-zero shift
    positive), so the bonds a call returns, and the sums over them, depend on the positions
    alone, not on where the list was last built. Memory: 11 bytes per listed bond (int32
    indices, int8 shifts). Structures periodic along some axes only are not cached
    (:func:`_half_bonds` each time). Not thread-safe: one calculator per thread.
    """

    def __init__(self, skin: float) -> None:
        if not skin >= 0.0:
            raise ValueError(f"the Verlet skin must be >= 0 Å, got {skin}")
        self.skin = float(skin)
        self._key: tuple | None = None
        self._positions = np.empty((0, 3))
        self._i = self._j = np.empty(0, dtype=np.int32)
        self._shift = np.empty((0, 3), dtype=np.int8)

    def bonds(self, atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``i``, ``j`` (M,), ``D`` = r_j + shift - r_i (M, 3), Å, and ``d`` = |D| (M,), Å, of
        every bond within ``cutoff`` Å, each once (as :func:`_half_bonds`)."""
        pbc = np.asarray(atoms.pbc, dtype=bool)
        if pbc.any() and not pbc.all():
            return _half_bonds(atoms, cutoff)
        positions = np.asarray(atoms.positions, dtype=float)
        box = atoms.cell.array if pbc.all() else np.zeros((3, 3))
        key = (len(atoms), float(cutoff), bool(pbc.all()), np.asarray(box, dtype=float).tobytes())
        if key != self._key or self._moved_too_far(positions):
            self._build(positions, box, bool(pbc.all()), cutoff, key)
        D = positions[self._j] - positions[self._i] + self._shift @ box
        d = np.sqrt(np.einsum("mc,mc->m", D, D))
        keep = np.flatnonzero(d < cutoff)
        return self._i[keep].astype(np.intp), self._j[keep].astype(np.intp), D[keep], d[keep]

    def _moved_too_far(self, positions: np.ndarray) -> bool:
        shift = positions - self._positions
        return bool(np.max(np.einsum("nc,nc->n", shift, shift), initial=0.0) >= (0.5 * self.skin) ** 2)

    def _build(self, positions: np.ndarray, box: np.ndarray, periodic: bool, cutoff: float,
               key: tuple) -> None:
        from vesin import NeighborList

        i, j, S = NeighborList(cutoff=float(cutoff) + self.skin, full_list=False).compute(
            points=np.ascontiguousarray(positions),
            box=np.ascontiguousarray(box, dtype=float) if periodic else np.zeros((3, 3)),
            periodic=periodic, quantities="ijS",
        )
        i, j, S = i.astype(np.int64), j.astype(np.int64), S.astype(np.int64)
        # one canonical direction per bond: i < j, or for a self-image bond the shift whose
        # first non-zero component is positive
        first = np.take_along_axis(S, np.argmax(S != 0, axis=1)[:, None], axis=1)[:, 0]
        flip = (i > j) | ((i == j) & (first < 0))
        i, j = np.where(flip, j, i), np.where(flip, i, j)
        S = np.where(flip[:, None], -S, S)
        order = np.lexsort((S[:, 2], S[:, 1], S[:, 0], j, i))
        self._i, self._j = i[order].astype(np.int32), j[order].astype(np.int32)
        self._shift = S[order].astype(np.int8 if np.abs(S).max(initial=0) <= 127 else np.int64)
        self._positions = positions.copy()
        self._key = key


def _bonds_are_pairs(atoms: Atoms, cutoff: float) -> bool:
    """True when no atom is within ``cutoff`` Å of two images of another atom: every plane
    spacing along a periodic axis exceeds 2 ``cutoff`` (isolated structures: always)."""
    periodic = np.asarray(atoms.pbc, dtype=bool)
    if not periodic.any():
        return True
    spacing = 1.0 / np.linalg.norm(np.linalg.inv(atoms.cell.array).T, axis=1)
    return bool(np.all(spacing[periodic] > 2.0 * cutoff))


def _symmetric_block_sums(
    index: np.ndarray, weight: np.ndarray, vectors: np.ndarray, n_atoms: int
) -> np.ndarray:
    """Σ over rows k with ``index[k]`` = i of weight_k v_k v_kᵀ, shape (n_atoms, 3, 3).

    Six weighted bincounts over the rows (M,) instead of an (M, 3, 3) array: the memory of the
    on-site blocks stays a few floats per bond.
    """
    blocks = np.empty((n_atoms, 3, 3))
    for a in range(3):
        for b in range(a, 3):
            column = np.bincount(index, weights=weight * vectors[:, a] * vectors[:, b], minlength=n_atoms)
            blocks[:, a, b] = column
            blocks[:, b, a] = column
    return blocks


def _sum_by_atom(index: np.ndarray, values: np.ndarray, n_atoms: int) -> np.ndarray:
    """Rows of ``values`` (M, k) summed by atom ``index`` (M,), shape (n_atoms, k)."""
    return np.stack(
        [np.bincount(index, weights=values[:, c], minlength=n_atoms) for c in range(values.shape[1])],
        axis=1,
    ).astype(float)


def _block_matrix(
    block_rows: np.ndarray, block_cols: np.ndarray, blocks: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Sum 3x3 ``blocks`` (M, 3, 3) into a CSR matrix of (3 shape[0], 3 shape[1]) at atom
    positions (``block_rows``, ``block_cols``)."""
    alpha = np.arange(3)
    rows = (3 * block_rows[:, None, None] + alpha[None, :, None]).repeat(3, axis=2)
    cols = (3 * block_cols[:, None, None] + alpha[None, None, :]).repeat(3, axis=1)
    matrix = sp.coo_matrix(
        (blocks.ravel(), (rows.ravel(), cols.ravel())), shape=(3 * shape[0], 3 * shape[1])
    ).tocsr()
    matrix.sum_duplicates()
    return matrix
