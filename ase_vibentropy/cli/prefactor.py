"""``vibentropy prefactor``: barrier, Vineyard attempt frequency and migration entropy of a jump.

No physics here: everything comes from :mod:`ase_vibentropy.harmonic` (``refine_saddle``,
``attempt_frequency``) and, with ``--model``, from the model's own predictions. This module
reads the structures, runs those functions and prints a table or one JSON object.
"""

from __future__ import annotations

import numpy as np

import argparse
import json
from typing import Any

DEFAULT_POTENTIAL = "fe-mendelev2003"

DESCRIPTION = """Harmonic transition-state theory of the jump INITIAL -> SADDLE (and FINAL ->
SADDLE with --final): the barrier ΔE (eV), the Vineyard attempt frequency ν* (THz) and the
classical migration entropy ΔS_m = S_saddle (3N-4 modes) - S_minimum (3N-3 modes), k_B, from
the potential's exact Hessian. The saddle must be a first-order saddle (exactly one negative
ω²); --refine first converges it (to max |F| <= 1e-6 eV/Å) from, e.g., an NEB climbing image.
The last frame of each file is used."""

EPILOG = """example:
  vibentropy prefactor initial.extxyz climbing_image.extxyz --final final.extxyz --refine --json"""

SADDLE_MODEL_NOTE = (
    "the model predicts minima only: the predicted ΔS_m and ν* need a migration model "
    "(trained on saddles, e.g. fe-mendelev2003-saddles)"
)


def _frame(path: str, potential):
    from ..structure import check_structure, read_structures

    atoms = read_structures(path, index=-1)[0]
    check_structure(atoms)
    potential.check_species(atoms)
    return atoms


def _jump_record(result) -> dict[str, Any]:
    record = result.as_dict()
    record["S_minimum_kB"] = result.minimum.entropy_kB
    record["S_saddle_kB"] = result.saddle.entropy_kB
    return record


def _model_record(args: argparse.Namespace, minima: dict[str, Any], saddle) -> dict[str, Any]:
    """A migration model's ΔS_m (k_B) and ν* (THz) of each jump, with their one-sigma spread;
    a minimum model's S (k_B) of each minimum, and the note that it has none for the saddle."""
    from ..harmonic.saddle import vineyard_frequency_THz
    from ..predictor import EntropyPredictor
    from ..units import KB_EV_PER_K

    predictor = EntropyPredictor(args.model)
    temperature = args.temperature
    if predictor.predicts_jumps:
        record = {"model": str(args.model), "kind": "migration"}
        for name, atoms in minima.items():
            delta_s, std = predictor.predict_migration_entropy(atoms, saddle, temperature, return_std=True)
            record["forward" if name == "initial" else "backward"] = {
                "delta_S_m_kB": delta_s / KB_EV_PER_K, "delta_S_m_std_kB": std / KB_EV_PER_K,
                "nu_THz": vineyard_frequency_THz(delta_s / KB_EV_PER_K, predictor._temperature(temperature)),
                "nu_factor_1sigma": float(np.exp(std / KB_EV_PER_K)),
            }
        return record
    record: dict[str, Any] = {"model": str(args.model), "kind": "minimum", "saddle": None,
                              "note": SADDLE_MODEL_NOTE}
    for name, atoms in minima.items():
        if not predictor.total_defined:
            record[name] = {"S_kB": None, "S_std_kB": None}  # a formation-only model has no S
            continue
        s, s_std = predictor.predict_entropy(atoms, temperature, return_std=True)
        record[name] = {"S_kB": s / KB_EV_PER_K, "S_std_kB": s_std / KB_EV_PER_K}
    return record


def _print_table(report: dict[str, Any]) -> None:
    print(f"potential {report['potential']}, T = {report['temperature_K']:g} K"
          + (f"; saddle refined to max |F| = {report['saddle_max_force_eV_per_A']:.2g} eV/Å"
             if report["saddle_refined"] else ""))
    print(f"{'jump':>16} {'dE_eV':>9} {'nu_THz':>10} {'dS_m_kB':>9} {'modes':>9} {'omega2_unstable':>16}")
    for key, label in (("forward", "initial->saddle"), ("backward", "final->saddle")):
        if key in report:
            jump = report[key]
            modes = f"{jump['n_modes_minimum']}/{jump['n_modes_saddle']}"
            print(f"{label:>16} {jump['delta_E_eV']:9.4f} {jump['nu_THz']:10.4g} "
                  f"{jump['delta_S_m_kB']:9.4f} {modes:>9} {jump['unstable_omega2']:16.4g}")
            if jump["nu_quantum_THz"] is not None:
                print(f"{'(quantum)':>16} {'':>9} {jump['nu_quantum_THz']:10.4g} "
                      f"{jump['delta_S_m_quantum_kB']:9.4f}")
    model = report.get("model_prediction")
    if model is not None and model["kind"] == "migration":
        for key, label in (("forward", "initial->saddle"), ("backward", "final->saddle")):
            if key in model:
                jump, exact = model[key], report[key]
                print(f"model {model['model']}, {label}: ΔS_m = {jump['delta_S_m_kB']:.3f} ± "
                      f"{jump['delta_S_m_std_kB']:.3f} k_B (exact {exact['delta_S_m_kB']:.3f}), "
                      f"ν* = {jump['nu_THz']:.4g} THz (×/÷ {jump['nu_factor_1sigma']:.2f}; "
                      f"exact {exact['nu_THz']:.4g})")
    elif model is not None:
        for name in ("initial", "final"):
            if name in model:
                exact = report["forward" if name == "initial" else "backward"]["S_minimum_kB"]
                pred = model[name]["S_kB"]
                shown = "none (formation-only model)" if pred is None else (
                    f"{pred:.3f} ± {model[name]['S_std_kB']:.3f}")
                print(f"model {model['model']}: S({name}) = {shown} k_B (exact {exact:.3f})")
        print(f"model: {model['note']}")


def run(args: argparse.Namespace) -> int:
    """Compute and print the report; return the exit code."""
    from ..errors import VibEntropyError
    from ..harmonic import attempt_frequency, check_relaxed, max_force, refine_saddle
    from ..potentials import get_potential
    from .main import add_context

    potential = get_potential(args.potential)
    calc = potential.hessian_calculator()
    initial = _frame(args.initial, potential)
    saddle = _frame(args.saddle, potential)
    final = _frame(args.final, potential) if args.final is not None else None
    if args.refine:
        try:
            saddle = refine_saddle(saddle, calc)
        except VibEntropyError as exc:
            raise add_context(exc, f"refining SADDLE {args.saddle}") from None
    named = [("INITIAL", args.initial, initial), ("SADDLE", args.saddle, saddle)]
    if final is not None:
        named.append(("FINAL", args.final, final))
    for role, path, atoms in named:  # say which structure is not stationary, before any Hessian
        try:
            check_relaxed(atoms, calc, args.fmax)
        except VibEntropyError as exc:
            hint = " (or pass --refine)" if role == "SADDLE" and not args.refine else ""
            raise add_context(exc, f"{role} {path}{hint}") from None
    options = dict(calc=calc, temperature=args.temperature, quantum=args.quantum, fmax=args.fmax)
    report: dict[str, Any] = {
        "potential": potential.name,
        "temperature_K": args.temperature,
        "saddle_refined": bool(args.refine),
        "saddle_max_force_eV_per_A": max_force(saddle, calc),
        "forward": _jump_record(attempt_frequency(initial, saddle, **options)),
    }
    minima = {"initial": initial}
    if final is not None:
        report["backward"] = _jump_record(attempt_frequency(final, saddle, **options))
        minima["final"] = final
    if args.model is not None:
        report["model_prediction"] = _model_record(args, minima, saddle)
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prefactor`` sub-command to the ``vibentropy`` parser."""
    from ..potentials import available_potentials

    parser = subparsers.add_parser(
        "prefactor",
        help="barrier, attempt frequency and migration entropy of a jump",
        description=DESCRIPTION,
        epilog=EPILOG + f"\npotentials: {', '.join(available_potentials())}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("initial", metavar="INITIAL", help="relaxed initial minimum (ase.io file)")
    parser.add_argument("saddle", metavar="SADDLE", help="first-order saddle, or a guess with --refine")
    parser.add_argument("--final", metavar="FINAL", help="relaxed final minimum: also final->saddle")
    parser.add_argument(
        "--potential", metavar="NAME", default=DEFAULT_POTENTIAL,
        help=f"named potential (default {DEFAULT_POTENTIAL})",
    )
    parser.add_argument(
        "--model", metavar="M",
        help="also a model's prediction: a migration model's ΔS_m and ν* of each jump, or a "
             "minimum model's S of the minima (k_B)")
    parser.add_argument("--temperature", type=float, default=300.0, metavar="T", help="K (default 300)")
    parser.add_argument("--refine", action="store_true", help="refine the saddle first (1e-6 eV/Å)")
    parser.add_argument("--quantum", action="store_true", help="also the quantum-harmonic prefactor")
    parser.add_argument(
        "--fmax", type=float, default=1e-3, metavar="F",
        help="largest residual force accepted at the structures, eV/Å (default 1e-3)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(func=run)
