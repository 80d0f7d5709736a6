"""``vibentropy reference``: exact harmonic entropies of structures in a file (docs/theory.md).

No physics here: the entropies come from :mod:`ase_vibentropy.harmonic`, the models from
:mod:`ase_vibentropy.potentials`. This module reads the frames, builds or picks each frame's
bulk reference, caches bulk entropies per distinct cell, and prints JSON lines or a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

DEFAULT_POTENTIAL = "fe-mendelev2003"

DESCRIPTION = """Exact harmonic entropy S (Eq. 2, k_B) of every frame of FILE from a potential's
Hessian, and S_f = S_d - (N_d/N_b) S_b (Eq. 3) against the perfect --lattice filling the same
cubic cell (a0: --a0 or the potential's) or the --bulk frame with the same cell."""

EPILOG = """potentials: {potentials}
example:
  vibentropy reference vacancy.extxyz --potential fe-mendelev2003 --lattice bcc --relax --json"""


def _resolve_names(args: argparse.Namespace):
    """Validate every name before any computation; return the potential and Hessian source."""
    from ..errors import UnknownNameError
    from ..harmonic import HESSIAN_METHODS, LATTICES, SOLVERS
    from ..potentials import get_potential

    potential = get_potential(args.potential)
    for value, known, what in (
        (args.hessian, HESSIAN_METHODS, "Hessian source"),
        (args.solver, SOLVERS, "solver"),
    ):
        if value not in known:
            raise UnknownNameError(f"unknown {what} {value!r}; known: {', '.join(known)}")
    if args.lattice is not None and args.lattice not in LATTICES:
        raise UnknownNameError(f"unknown lattice {args.lattice!r}; known: {', '.join(LATTICES)}")
    method = args.hessian
    if method == "auto":
        method = "analytic" if potential.analytic_hessian else "phonopy"
    if method == "analytic" and not potential.analytic_hessian:
        raise UnknownNameError(
            f"potential {potential.name!r} has no analytic Hessian; use --hessian phonopy or fd"
        )
    return potential, method


def _lattice_a0(args: argparse.Namespace, potential) -> float:
    from ..errors import CellMismatchError

    if args.a0 is not None:
        return args.a0
    if args.lattice != potential.lattice:
        raise CellMismatchError(
            f"--lattice {args.lattice} differs from the {potential.lattice} lattice of "
            f"{potential.name}: give its lattice constant with --a0"
        )
    return potential.a0


def _matching_bulk(frame, bulk_frames: list) -> tuple[int, Any]:
    """The frame of --bulk with the same cell as ``frame`` (to 1e-6 Å), and its index."""
    import numpy as np

    from ..errors import CellMismatchError

    cell = np.asarray(frame.cell[:])
    for k, candidate in enumerate(bulk_frames):
        if np.allclose(np.asarray(candidate.cell[:]), cell, rtol=0.0, atol=1e-6):
            return k, candidate
    raise CellMismatchError(
        f"no frame of --bulk has the cell of this frame ({np.round(cell, 6).tolist()} Å): Eq. 3 "
        "compares defect and bulk in the same cell; give a bulk with that cell or use --lattice"
    )


_TABLE_HEADER = (
    f"{'index':>5} {'n_atoms':>7} {'S_kB':>14} {'Sf_kB':>9} {'n_imag':>6} "
    f"{'hessian':>8} {'solver':>14} {'seconds':>8}"
)


def _table_row(out: dict[str, Any]) -> str:
    sf = f"{out['Sf_kB']:9.3f}" if "Sf_kB" in out else f"{'-':>9}"
    return (
        f"{out['index']:>5} {out['n_atoms']:>7} {out['S_kB']:>14.3f} {sf} "
        f"{out['n_imaginary']:>6} {out['hessian']:>8} {out['solver']:>14} {out['seconds']:>8.2f}"
    )


def _annotated(atoms, result, bulk, out: dict[str, Any]):
    """Copy of ``atoms`` with per-atom ``local_entropy`` (and formation part) arrays, k_B."""
    annotated = atoms.copy()
    annotated.calc = None
    annotated.set_array("local_entropy", result.local_entropies_kB)
    if bulk is not None:
        # Σ_i (s_i - S_b/N_b) = S_d - (N_d/N_b) S_b = S_f (Eq. 3 with Eq. 11).
        share = bulk.entropy_kB / bulk.n_atoms
        annotated.set_array("local_formation_entropy", result.local_entropies_kB - share)
    annotated.info.update({k: v for k, v in out.items() if k not in ("index", "seconds")})
    return annotated


def run(args: argparse.Namespace) -> int:
    """Compute and print the entropies; return the exit code.

    Each frame's line is printed (and flushed) as soon as it is computed. A frame that fails
    (not relaxed, not a minimum, wrong cell, ...) stops the run with an error naming that frame;
    the lines of the frames before it stay on stdout and their ``--local-entropies``
    annotations are still written.
    """
    import numpy as np
    from ase.io import write
    from tqdm.auto import tqdm

    from ..errors import (
        CellMismatchError,
        EmbeddingNotApplicableError,
        InvalidOptionError,
        VibEntropyError,
    )
    from ..harmonic import (
        DEFAULT_FMAX_EV_PER_A,
        bulk_for_cell,
        choose_solver,
        formation_entropy,
        harmonic_entropy,
    )
    from ..potentials import RELAX_FMAX_EV_PER_A
    from ..structure import check_structure, read_structures
    from ..units import KB_EV_PER_K
    from .main import add_context

    if args.a0 is not None and args.lattice is None:
        raise CellMismatchError("--a0 sets the lattice constant of --lattice: give --lattice too")
    potential, method = _resolve_names(args)
    if args.solver == "embedding" and (args.lattice is None or method != "analytic"):
        raise InvalidOptionError(
            "--solver embedding needs --lattice (the perfect-lattice reference) and the "
            "analytic Hessian of the potential"
        )
    a0 = _lattice_a0(args, potential) if args.lattice is not None else None
    fmax = args.fmax
    if fmax is None:
        fmax = RELAX_FMAX_EV_PER_A if args.relax else DEFAULT_FMAX_EV_PER_A
    step = args.step if args.step is not None else potential.fd_step
    interactive = sys.stderr.isatty()

    frames = read_structures(args.file)
    bulk_frames = read_structures(args.bulk) if args.bulk is not None else None
    # Start-up (not timed per frame): calculators read potential files, LAMMPS starts.
    hessian_calc = potential.hessian_calculator()
    calc = hessian_calc if method == "analytic" else potential.force_calculator()
    bulk_cache: dict[Any, Any] = {}
    local_frames = []

    def entropy_of(atoms, solver: str, local: bool):
        return harmonic_entropy(
            atoms,
            calc,
            temperature=args.temperature,
            hessian=method,
            solver=solver,
            local=local,
            allow_imaginary=args.allow_imaginary,
            fmax=fmax,
            step=step,
            progress=interactive,
        )

    def relaxed(atoms):
        return potential.relax(atoms, fmax=fmax, calc=hessian_calc) if args.relax else atoms

    def bulk_result(frame):
        if args.lattice is not None:
            key: Any = ("lattice", tuple(np.round(np.asarray(frame.cell[:]), 6).ravel()))
            if key not in bulk_cache:
                perfect = bulk_for_cell(frame, args.lattice, a0, potential.element)
                bulk_cache[key] = entropy_of(perfect, args.solver, local=False)
            return bulk_cache[key]
        if bulk_frames is not None:
            k, perfect = _matching_bulk(frame, bulk_frames)
            if k not in bulk_cache:
                check_structure(perfect)
                potential.check_species(perfect)
                bulk_cache[k] = entropy_of(relaxed(perfect), args.solver, local=False)
            return bulk_cache[k]
        return None

    if not args.json:
        print(
            f"potential {potential.name}, T = {args.temperature:g} K, Hessian {method}, "
            f"solver {args.solver}; entropies in k_B"
        )
        print(_TABLE_HEADER, flush=True)

    def embedded_record(index: int, frame, start: float) -> dict[str, Any]:
        """The frame's S_f by embedding (which relaxes the frame itself with --relax)."""
        result = harmonic_entropy(  # refuses before relaxing
            frame, hessian_calc, temperature=args.temperature, solver="embedding",
            relax=args.relax, fmax=fmax, lattice=args.lattice, a0=a0,
        ).embedding
        out = {"index": index, "n_atoms": result.n_atoms, "n_imaginary": 0,
               "hessian": "analytic", "solver": "embedding",
               "temperature_K": result.temperature, "potential": potential.name}
        out.update(result.as_dict())
        out["seconds"] = time.perf_counter() - start
        return out

    def frame_record(index: int, frame) -> dict[str, Any]:
        start = time.perf_counter()
        check_structure(frame)
        potential.check_species(frame)
        choice = choose_solver(
            frame, args.solver, local=args.local_entropies is not None,
            allow_imaginary=args.allow_imaginary, lattice=args.lattice, a0=a0,
            hessian=method, calc=calc,
        )
        solver, refused = choice.solver, choice.embedding_refused
        if solver == "embedding":
            try:
                return embedded_record(index, frame, start)
            except EmbeddingNotApplicableError as exc:
                if args.solver == "embedding":
                    raise
                solver, refused = choice.fallback, str(exc)
        bulk = bulk_result(frame)  # first: a cell mismatch fails before the costly part
        atoms = relaxed(frame)
        result = entropy_of(atoms, solver, local=args.local_entropies is not None)
        out: dict[str, Any] = {
            "index": index,
            "n_atoms": len(atoms),
            "S_kB": result.entropy_kB,
            "n_imaginary": result.n_imaginary,
            "hessian": result.hessian_method,
            "solver": result.solver,
            "temperature_K": result.temperature,
            "potential": potential.name,
        }
        if bulk is not None:
            out["Sf_kB"] = formation_entropy(result, bulk) / KB_EV_PER_K
            out["S_bulk_kB"] = bulk.entropy_kB
            out["n_bulk"] = bulk.n_atoms
        if refused is not None and args.lattice is not None:
            out["embedding_refused"] = refused
        out["seconds"] = time.perf_counter() - start
        if args.local_entropies is not None:
            local_frames.append(_annotated(atoms, result, bulk, out))
        return out

    for index, frame in enumerate(
        tqdm(frames, desc="frames", unit="frame", disable=not interactive)
    ):
        try:
            out = frame_record(index, frame)
        except VibEntropyError as exc:
            if args.local_entropies is not None and local_frames:
                write(args.local_entropies, local_frames, format="extxyz")
            done = f"; frames 0-{index - 1} were printed above" if index else ""
            raise add_context(exc, f"frame {index} of {args.file}{done}") from None
        print(json.dumps(out) if args.json else _table_row(out), flush=True)
    if args.local_entropies is not None:
        write(args.local_entropies, local_frames, format="extxyz")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``reference`` sub-command to the ``vibentropy`` parser."""
    from ..potentials import available_potentials

    parser = subparsers.add_parser(
        "reference",
        help="exact harmonic entropy from a potential's Hessian",
        description=DESCRIPTION,
        epilog=EPILOG.format(potentials=", ".join(available_potentials())),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="structures readable by ase.io (all frames)")
    parser.add_argument(
        "--potential", metavar="NAME", default=DEFAULT_POTENTIAL,
        help=f"named potential (default {DEFAULT_POTENTIAL})",
    )
    parser.add_argument(
        "--hessian", metavar="auto|analytic|phonopy|fd", default="auto",
        help="auto: analytic if the potential has one, else phonopy",
    )
    parser.add_argument(
        "--solver", metavar="auto|dense|logdet|bloch|embedding", default="auto",
        help="auto: embedding from 4000 atoms with --lattice, else log-det from 1000",
    )
    bulk = parser.add_mutually_exclusive_group()
    bulk.add_argument("--lattice", metavar="bcc|fcc|sc", help="bulk = perfect lattice, same cell")
    bulk.add_argument("--bulk", metavar="FILE", help="bulk frame(s), matched by cell")
    parser.add_argument("--a0", type=float, metavar="A", help="lattice constant for --lattice, Å")
    parser.add_argument(
        "--temperature", type=float, default=300.0, metavar="T", help="K (default 300)"
    )
    parser.add_argument("--relax", action="store_true", help="relax at fixed cell to --fmax first")
    parser.add_argument(
        "--fmax", type=float, metavar="F",
        help="eV/Å: target with --relax (1e-5), else largest accepted force (1e-3)",
    )
    parser.add_argument(
        "--step", type=float, metavar="H", help="phonopy/fd step, Å (default: potential's)"
    )
    parser.add_argument(
        "--allow-imaginary", action="store_true", help="count imaginary modes, do not fail"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per frame on stdout")
    parser.add_argument(
        "--local-entropies", "--local", dest="local_entropies", metavar="OUT.extxyz",
        help="write per-atom local (formation) entropies, k_B",
    )
    parser.set_defaults(func=run)
