"""Vacancy migration by NEB: barrier, exact Vineyard attempt frequency and migration entropy.

Shows: an ase.mep NEB band for a nearest-neighbour vacancy jump, checked for intermediate
minima (with bcc Fe and the Mendelev 2003 potential the jump is two-step: initial -> saddle ->
a metastable state at the midpoint -> the symmetric saddle -> final), each elementary saddle
refined to max |F| <= 1e-6 eV/Å with exactly one negative ω², and harmonic transition-state
theory for each step from both sides: ΔE (eV), ν* (THz) and ΔS_m (k_B). The model's S is
printed for the minima only (the images between are not minima); a migration model (trained on
saddles, ``vibentropy train DB --target migration``; by default the shipped
``fe-mendelev2003-saddles`` when the potential is the closed-form Fe) predicts ΔS_m and ν* of
every step, printed with their one-sigma spread next to the exact ones.

    python examples/neb_vacancy_migration.py                 # bcc Fe, 4x4x4 cells (127 atoms)
    python examples/neb_vacancy_migration.py --cells 5 --temperature 600
    python examples/neb_vacancy_migration.py --migration-model fe-saddles.json
    python examples/neb_vacancy_migration.py --migration-model none     # exact values only
"""

from __future__ import annotations

import time

import numpy as np

from _common import DEFAULT_POTENTIAL, describe, kB, parser, setup
from ase_vibentropy.data.builders import vacancy_jump
from ase_vibentropy.harmonic import band_jumps, climbing_band
from ase_vibentropy.harmonic.saddle import vineyard_frequency_THz
from ase_vibentropy.predictor import EntropyPredictor

#: The shipped bcc-Fe migration model, used with the closed-form Fe potential.
SHIPPED_MIGRATION_MODEL = "fe-mendelev2003-saddles"


def end_points(potential, cells: int):
    """Relaxed vacancy before and after one nearest-neighbour jump (same cell, same atoms)."""
    calc = potential.hessian_calculator()
    initial, final = vacancy_jump(potential.perfect_supercell(cells))
    return potential.relax(initial, calc=calc), potential.relax(final, calc=calc)


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = parser(__doc__.splitlines()[0], cells=4, quick_cells=4)
    p.add_argument("--images", type=int, default=5,
                   help="interior images (default 5: an odd count puts one at the midpoint)")
    p.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    p.add_argument("--migration-model", metavar="MODEL",
                   help="migration model (file or shipped name) predicting ΔS_m and ν* of every step; "
                        f"default {SHIPPED_MIGRATION_MODEL!r} with the {DEFAULT_POTENTIAL!r} potential, "
                        "'none' for exact values only")
    args = p.parse_args(argv)
    model, potential, cells = setup(args)
    migration_model = args.migration_model
    if migration_model is None and potential.name == DEFAULT_POTENTIAL:
        migration_model = SHIPPED_MIGRATION_MODEL
    if migration_model is not None and migration_model.lower() == "none":
        migration_model = None
    start = time.perf_counter()
    initial, final = end_points(potential, cells)
    images, converged = climbing_band(initial, final, potential.hessian_calculator, n_images=args.images)
    energies = np.array([image.get_potential_energy() for image in images]) - initial.get_potential_energy()
    print(f"vacancy jump: {describe(initial)}, {len(images)} images, NEB converged: {converged}")
    print("band E - E_initial (eV): " + " ".join(f"{e:.4f}" for e in energies))

    jumps = band_jumps(images, potential.hessian_calculator(), temperature=args.temperature)
    inner = [j.images[2] for j in jumps[:-1]]
    if inner:
        print(f"intermediate minimum at image(s) {inner}: {len(jumps)} elementary jumps, each "
              "with its own saddle")
    print(f"T = {args.temperature:g} K; ν* and ΔS_m exact (harmonic TST, "
          f"ΔS_m over {jumps[0].forward.n_modes_saddle} - {jumps[0].forward.n_modes_minimum} modes)")
    print(f"{'step':>4} {'images':>10} {'from':>8} {'ΔE (eV)':>9} {'ν* (THz)':>10} {'ΔS_m (k_B)':>11}")
    records = []
    for k, jump in enumerate(jumps, start=1):
        left, top, right = jump.images
        for side, result in (("left", jump.forward), ("right", jump.backward)):
            print(f"{k:4d} {f'{left}-[{top}]-{right}':>10} {side:>8} {result.delta_E:9.4f} "
                  f"{result.nu_THz:10.3f} {result.delta_S_m_kB:11.4f}")
        records.append({"images": list(jump.images), "forward": jump.forward.as_dict(),
                        "backward": jump.backward.as_dict()})
    barrier = max(j.saddle.get_potential_energy() for j in jumps) - initial.get_potential_energy()
    exact_minima = [jumps[0].forward.minimum.entropy_kB, jumps[-1].backward.minimum.entropy_kB]
    print(f"overall barrier {barrier:.4f} eV; S(initial) = {exact_minima[0]:.6f}, "
          f"S(final) = {exact_minima[1]:.6f} k_B (exact); {time.perf_counter() - start:.1f} s")
    predictor = EntropyPredictor(model)
    predicted = [kB(predictor.predict_entropy(m, args.temperature)) for m in (initial, final)]
    print(f"model S of the minima: {predicted[0]:.3f}, {predicted[1]:.3f} k_B (a minimum model; the "
          "saddles need a model trained on them)")
    migration = []
    if migration_model:
        jumper = EntropyPredictor(migration_model)
        print(f"migration model {migration_model}:")
        print(f"{'step':>4} {'from':>8} {'ΔS_m model (k_B)':>18} {'ν* model (THz)':>16}")
        for k, jump in enumerate(jumps, start=1):
            for side, minimum in (("left", jump.left), ("right", jump.right)):
                delta_s, std = jumper.predict_migration_entropy(minimum, jump.saddle, args.temperature,
                                                                return_std=True)
                nu = vineyard_frequency_THz(kB(delta_s), args.temperature)
                factor = float(np.exp(kB(std)))  # ν* within [ν*/factor, ν* factor] at one sigma
                print(f"{k:4d} {side:>8} {kB(delta_s):10.3f} ± {kB(std):5.3f} {nu:10.3f} ×/÷ {factor:.2f}")
                migration.append({"step": k, "from": side, "dS_m_kB": kB(delta_s), "std_kB": kB(std),
                                  "nu_THz": nu, "nu_factor": factor})
    return {
        "converged": bool(converged),
        "band_eV": energies.tolist(),
        "intermediate_minima": inner,
        "jumps": records,
        "barrier_eV": barrier,
        "entropy_minima_kB": exact_minima,
        "model_entropy_minima_kB": predicted,
        "model_migration": migration,
    }


if __name__ == "__main__":
    main()
