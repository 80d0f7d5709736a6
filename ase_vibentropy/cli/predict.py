"""``vibentropy predict``: LDML entropies of structures in a file, without a Hessian."""

from __future__ import annotations

import argparse
import json
import time

DESCRIPTION = """Predict S and, with a bulk reference, S_f (k_B, with the predictive std) of every
frame of FILE, in O(N) over spatial chunks (threads, or Dask with --scheduler). The bulk is the
perfect --lattice filling each frame's cubic cell, or --bulk FILE; default model
fe-mendelev2003-afs. Warnings (stderr) as in the Python calculator; --strict makes them errors."""

EPILOG = """examples:
  vibentropy predict vacancy.extxyz --lattice bcc
  vibentropy predict traj.extxyz --model fe-afs.json --bulk perfect.extxyz --json --local local.extxyz
  vibentropy predict many.extxyz --lattice bcc --scheduler tcp://scheduler:8786"""

#: Frames whose descriptor passes are sent to a Dask cluster together.
DASK_BATCH = 16


def _load(name: str | None):
    from ..errors import ModelFileError
    from ..model_io import DEFAULT_MODEL, load_model, shipped_models

    if name is not None:
        return load_model(name)
    try:
        return load_model(DEFAULT_MODEL)
    except ModelFileError as exc:
        if DEFAULT_MODEL in shipped_models():
            raise
        raise ModelFileError(
            f"no --model given and the default shipped model {DEFAULT_MODEL!r} is not installed "
            f"(shipped: {', '.join(shipped_models()) or 'none'}); pass --model MODEL.json"
        ) from exc


def _bulk_for(frame, args, model, bulk_atoms):
    """The bulk reference of ``frame``: ``--bulk``, the ``--lattice`` filling its cell, or None.

    The reference is checked against the frame (site count, lattice constant against the
    model's; :mod:`ase_vibentropy.domain`)."""
    from ..domain import check_lattice_constant, check_reference_lattice
    from ..errors import CellMismatchError
    from ..harmonic import bulk_for_cell

    if bulk_atoms is not None:
        check_reference_lattice(frame, bulk_atoms, args.max_site_mismatch)
        return bulk_atoms
    if args.lattice is None:
        if frame.cell.rank == 0 or not frame.pbc.any():
            import warnings

            from ..domain import DomainWarning

            warnings.warn("the structure has no periodic cell: treated as an isolated cluster "
                          "(6 zero modes); no formation entropy without a bulk reference",
                          DomainWarning, stacklevel=2)
        return None
    if frame.cell.rank == 0 or not frame.pbc.any():
        raise CellMismatchError(
            "--lattice needs a periodic cell, but the structure has none (an isolated cluster): "
            "give the structure its periodic cell, or leave out --lattice to predict S only"
        )
    a0 = args.a0 if args.a0 is not None else model.a0
    if a0 is None:
        raise CellMismatchError("--lattice needs --a0: the model file does not store a lattice constant")
    if args.a0 is not None:
        check_lattice_constant(args.a0, model.a0)
    symbols = frame.get_chemical_symbols()
    element = model.element or max(set(symbols), key=symbols.count)
    bulk = bulk_for_cell(frame, args.lattice, a0, element)
    check_reference_lattice(frame, bulk, args.max_site_mismatch)
    return bulk


def _frame_warnings(frame, out: dict, model, args, force_calc) -> list[str]:
    """The domain warnings of one frame, as the calculator would give them (one line each)."""
    from ..domain import residual_force_message, training_domain_messages, uncertainty_message

    messages = list(training_domain_messages(model, frame))
    if force_calc is not None:
        probe = frame.copy()
        probe.calc = force_calc
        message = residual_force_message(probe.get_forces(), args.fmax_warning)
        if message:
            messages.append(message)
    for key, what in (("S_std_kB", "the vibrational entropy"), ("Sf_std_kB", "the formation entropy")):
        if out.get(key) is not None:
            message = uncertainty_message(what, out[key], args.std_warning)
            if message:
                messages.append(message)
    return messages


def _fmt(out: dict, key: str, spec: str) -> str:
    """``out[key]`` formatted with ``spec``, or ``-`` when absent."""
    return format(out[key], spec) if out.get(key) is not None else "-"


def run(args: argparse.Namespace) -> int:
    """Predict S (and S_f) for every frame of ``args.file``; return the exit code.

    Each frame's line is printed (and flushed) as soon as it is computed. A frame that fails
    stops the run with an error naming that frame; the lines of the frames before it stay on
    stdout and their ``--local`` annotations are still written.
    """
    from ..errors import DescriptorError
    from ..predictor import EntropyPredictor
    from ..structure import read_structures

    model = _load(args.model)
    frames = read_structures(args.file, index=args.index)
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise DescriptorError(f"--workers must be a number of workers >= 1, got {workers}")
    scheduler = getattr(args, "scheduler", None)
    client, owned = None, False
    if scheduler is not None:
        from ..parallel import dask_client

        client, owned = dask_client(scheduler)
    try:
        # the predictor builds the descriptor: one that needs a missing extra fails before output
        return _run_frames(args, EntropyPredictor(model, workers=workers, scheduler=client), frames)
    finally:
        if owned:
            client.close()


def _run_frames(args: argparse.Namespace, predictor, frames: list) -> int:
    """Predict and print every frame of ``frames`` with ``predictor`` (see :func:`run`)."""
    from ase.io import write

    import sys

    from .._version import __version__
    from ..domain import force_calculator_for
    from ..errors import DomainError, ModelDomainError, VibEntropyError
    from ..model_io import DEFAULT_MODEL
    from ..structure import read_structures
    from .main import add_context

    model = predictor.model
    bulk_atoms = read_structures(args.bulk, index=-1)[0] if args.bulk else None
    temperature = model.temperature if args.temperature is None else args.temperature
    has_total = model.target != "formation"
    if not has_total and args.lattice is None and bulk_atoms is None:
        raise ModelDomainError(
            "this model was trained on formation entropies only, so it predicts nothing without "
            "a bulk reference: pass --lattice bcc|fcc or --bulk FILE"
        )
    local_frames = []
    model_name = str(args.model or DEFAULT_MODEL)
    provenance = {"model": model_name, "model_version": getattr(model, "package_version_", "unknown"),
                  "ase_vibentropy_version": __version__}
    force_calc = force_calculator_for(model) if args.fmax_warning is not None else None
    if not args.json:
        print(f"model {model_name} ({model.target}), T = {temperature:g} K")
        print(
            f"{'index':>5} {'n_atoms':>7} {'S_kB':>12} {'S_std':>7} {'Sf_kB':>9} {'Sf_std':>7} "
            f"{'seconds':>8}",
            flush=True,
        )
    for index, frame in enumerate(frames):
        if getattr(args, "scheduler", None) is not None and index % DASK_BATCH == 0:
            _prefetch_batch(frames[index : index + DASK_BATCH], args, predictor, bulk_atoms)
        try:
            out, annotated = _predict_frame(index, frame, args, predictor, bulk_atoms, temperature)
            for message in _frame_warnings(frame, out, model, args, force_calc):
                if args.strict:
                    raise DomainError(f"{message} (--strict)")
                print(f"vibentropy predict: warning: frame {index}: {message}", file=sys.stderr)
        except (VibEntropyError, UserWarning) as exc:  # UserWarning: raised by --strict
            if args.local and local_frames:
                write(args.local, local_frames, format="extxyz")
            done = f"; frames 0-{index - 1} were printed above" if index else ""
            raise add_context(exc, f"frame {index} of {args.file}{done}") from None
        out.update(provenance)
        if annotated is not None:
            annotated.info.update(provenance)
            local_frames.append(annotated)
        if args.json:
            print(json.dumps(out), flush=True)
        else:
            print(
                f"{index:>5} {len(frame):>7} {_fmt(out, 'S_kB', '12.3f'):>12} "
                f"{_fmt(out, 'S_std_kB', '7.3f'):>7} {_fmt(out, 'Sf_kB', '9.3f'):>9} "
                f"{_fmt(out, 'Sf_std_kB', '7.3f'):>7} {out['seconds']:>8.3f}",
                flush=True,
            )
    if args.local:
        write(args.local, local_frames, format="extxyz")
    return 0


def _prefetch_batch(batch: list, args: argparse.Namespace, predictor, bulk_atoms) -> None:
    """Send the descriptor passes of ``batch`` (and their bulk references) to the cluster at
    once. A frame that cannot be described is left to the frame loop, which reports it."""
    from ..errors import VibEntropyError
    from ..structure import check_structure

    frames, bulks = [], []
    for frame in batch:
        try:
            check_structure(frame)
            predictor.check_atoms(frame)
            bulk = _bulk_for(frame, args, predictor.model, bulk_atoms)
        except VibEntropyError:
            break  # the frame loop raises it with the frame's context
        frames.append(frame)
        if bulk is not None:
            bulks.append(bulk)
    predictor.prefetch(frames, local=bool(args.local))
    predictor.prefetch(bulks)  # sums only: perfect lattices take the shortcut


def _predict_frame(
    index: int, frame, args: argparse.Namespace, predictor, bulk_atoms, temperature: float
) -> tuple[dict, object]:
    """The output record of one frame (S, S_f in k_B) and its annotated copy for ``--local``.

    The annotated copy (per-atom ``local_entropy`` / ``local_formation_entropy``, k_B) is None
    without ``--local``.
    """
    from ..structure import check_structure
    from ..units import KB_EV_PER_K

    has_total = predictor.total_defined
    start = time.perf_counter()
    check_structure(frame)  # NaN, overlaps, cell: before a bulk is built for the frame
    bulk = _bulk_for(frame, args, predictor.model, bulk_atoms)
    out = {"index": index, "n_atoms": len(frame), "temperature_K": temperature}
    # one chunked pass gives Σ D and, for --local, every w · D_i (never the (N, dim) array)
    predictor.prefetch([frame], local=bool(args.local))
    if has_total:
        s, s_std = predictor.predict_entropy(frame, temperature, return_std=True)
        out["S_kB"], out["S_std_kB"] = s / KB_EV_PER_K, s_std / KB_EV_PER_K
        out["S_route"] = predictor.total_route(frame)
    else:
        out["S_kB"] = out["S_std_kB"] = None  # undefined for a formation-only model
    if bulk is not None:
        sf, sf_std = predictor.predict_formation_entropy(frame, bulk, temperature, return_std=True)
        out["Sf_kB"], out["Sf_std_kB"] = sf / KB_EV_PER_K, sf_std / KB_EV_PER_K
    annotated = None
    if args.local:
        annotated = frame.copy()
        annotated.calc = None
        if has_total:
            annotated.set_array("local_entropy", predictor.local_entropies(frame, temperature) / KB_EV_PER_K)
        if bulk is not None:
            annotated.set_array(
                "local_formation_entropy",
                predictor.local_formation_entropies(frame, bulk, temperature) / KB_EV_PER_K,
            )
    out["seconds"] = time.perf_counter() - start
    return out, annotated


def register(subparsers) -> None:
    """Add the ``predict`` sub-command."""
    parser = subparsers.add_parser(
        "predict", help="LDML entropy of structures (no Hessian)", description=DESCRIPTION,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="structure file readable by ase.io (all frames)")
    parser.add_argument("--model", metavar="MODEL", help="model file or shipped name")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--lattice", choices=("bcc", "fcc", "sc"), help="bulk reference lattice")
    group.add_argument("--bulk", metavar="FILE", help="bulk reference structure (same cell)")
    parser.add_argument("--a0", type=float, metavar="A", help="lattice constant for --lattice, Å")
    parser.add_argument("--temperature", type=float, metavar="T", help="K (default: the model's)")
    parser.add_argument("--index", default=":", help="ase.io frame selection (default all)")
    parser.add_argument("--json", action="store_true", help="one JSON object per frame")
    parser.add_argument("--local", metavar="OUT.extxyz", help="write per-atom local entropies (k_B)")
    parser.add_argument("--workers", type=int, metavar="N", help="threads (default: every CPU)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, tcp://host:8786")
    parser.add_argument("--std-warning", type=_threshold, default=3.0, metavar="KB",
                        help="warn above this std, k_B (default 3; none)")
    parser.add_argument("--fmax-warning", type=_threshold, default=0.05, metavar="F",
                        help="warn above this force, eV/Å (default 0.05; none)")
    parser.add_argument("--max-site-mismatch", type=float, default=0.10, metavar="X",
                        help="largest |N_d - N_b|/N_b of the bulk (0.10)")
    parser.add_argument("--strict", action="store_true", help="turn every warning into an error")
    parser.set_defaults(func=run)


def _threshold(text: str) -> float | None:
    """A positive threshold, or None for 'none'."""
    if text.strip().lower() == "none":
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 or 'none', got {text!r}")
    return value
