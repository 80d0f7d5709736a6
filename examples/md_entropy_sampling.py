"""Molecular dynamics (VelocityVerlet) sampling the predicted vibrational entropy every k steps.

Shows: the calculator inside an MD integrator. The dynamics uses the wrapped calculator's
forces unchanged; every k steps the entropy S of the instantaneous configuration is read from
the same calculator (one model evaluation; results are re-computed only after the atoms moved).
Instantaneous MD snapshots are not minima, so S(t) fluctuates around the relaxed value: it is a
descriptor-level diagnostic of how far the sampled configurations stray, not a thermodynamic
average. The relaxed value is printed last for comparison.

    python examples/md_entropy_sampling.py                   # bcc Fe vacancy, 4x4x4 cells, 300 K
    python examples/md_entropy_sampling.py --quick --potential emt-cu --model my_model.json
"""

from __future__ import annotations

import numpy as np
from ase import units
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet
from ase.optimize import FIRE

from _common import describe, kB, parser, setup
from ase_vibentropy import VibEntropyCalculator
from ase_vibentropy.data.builders import central_site, perfect_lattice

try:
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # ASE < 3.29
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = parser(__doc__.splitlines()[0], cells=4, quick_cells=3)
    p.add_argument("--steps", type=int, default=None, help="MD steps (default 200, 40 quick)")
    p.add_argument("--every", type=int, default=10, help="sample S every k steps (default 10)")
    p.add_argument("--md-temperature", type=float, default=300.0, help="initial kinetic T, K")
    args = p.parse_args(argv)
    model, potential, cells = setup(args)
    n_steps = args.steps or (40 if args.quick else 200)

    atoms = perfect_lattice(potential.element, potential.lattice, potential.a0, cells)
    del atoms[central_site(atoms)]
    atoms.calc = VibEntropyCalculator(model, calc=potential.force_calculator(), fmax_warning=None)
    FIRE(atoms, logfile=None).run(fmax=1e-3, steps=2000)
    S_relaxed = atoms.calc.get_property("vibrational_entropy", atoms)

    # Twice the target: equipartition moves half the kinetic energy into potential energy.
    thermalize_momenta(atoms, temperature_K=2 * args.md_temperature, rng=np.random.default_rng(1))
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    samples: list[tuple[int, float, float, float]] = []

    def sample() -> None:
        S = atoms.calc.get_property("vibrational_entropy", atoms)
        std = atoms.calc.get_property("vibrational_entropy_std", atoms)
        samples.append((dyn.nsteps, atoms.get_temperature(), S, std))
        print(f"{dyn.nsteps:5d} {atoms.get_temperature():8.1f} {kB(S):12.4f} {kB(std):10.3f} "
              f"{atoms.get_total_energy():14.5f}")

    print(f"MD of a vacancy: {describe(atoms)}, {n_steps} steps of 1 fs, S every {args.every}")
    print(f"{'step':>5} {'T (K)':>8} {'S (k_B)':>12} {'std (k_B)':>10} {'E_tot (eV)':>14}")
    dyn.attach(sample, interval=args.every)
    dyn.run(n_steps)
    values = np.array([kB(s[2]) for s in samples])
    print(f"S over the run: mean {values.mean():.3f} k_B, std {values.std():.3f} k_B; "
          f"relaxed vacancy: {kB(S_relaxed):.3f} k_B")
    return {"n_samples": len(samples), "entropy_kB": values.tolist(),
            "relaxed_entropy_kB": kB(S_relaxed)}


if __name__ == "__main__":
    main()
