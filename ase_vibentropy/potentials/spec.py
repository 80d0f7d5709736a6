"""Users' own potentials: a tabulated EAM file, a LAMMPS pair style, or any ASE calculator.

A *potential spec* is what a recipe's ``potential`` and ``vibentropy reference --potential``
accept besides a built-in name (docs/pipeline.md, "Potentials"). As a mapping (a TOML table, a
JSON object, a dict) it has exactly one of the keys

``eam = "PATH"``
    A one-element setfl file (``format = "eam/alloy"`` or ``"eam/fs"``, default from the
    extension). Interpolated by cubic splines through every ``stride``-th point, or, with
    ``fit = "knots"``, fitted by least-squares splines that keep the knots found in the tables
    (:func:`ase_vibentropy.eam.tabulated_eam`), with the exact analytic Hessian of those splines.
    Element, lattice, a0 and mass default to the file's header.
``lammps = {pair_style = "...", pair_coeff = ["...", ...]}``
    Any LAMMPS pair style with its files (the ``lammps`` extra), through ASE's ``LAMMPSlib``.
    No analytic Hessian: phonopy displacements or finite differences.
``factory = "package.module:callable"``
    Any ASE calculator: ``callable(**kwargs)`` must return one (``kwargs = {...}`` optional). A
    calculator with ``get_hessian`` (matscipy's convention) gives the analytic Hessian; any other
    goes through phonopy or finite differences.

and the optional keys ``element``, ``lattice`` (bcc, fcc), ``a0`` (Å; default the
zero-pressure lattice constant of the potential itself, found by root-finding the pressure),
``mass`` (amu), ``fd_step`` (Å, the displacement of phonopy and finite-difference Hessians,
default 1e-3), ``stride`` and ``fit`` (EAM files: ``"interpolate"``, the default, or
``"knots"``, which is smooth enough for Hessians). As a string, a spec is a built-in name, a path to an
EAM file, a path to a ``.toml`` or ``.json`` file holding the mapping, or the mapping as JSON.

Every spec is checked when it is read, before any job runs: missing files, an unknown pair
style, a factory that cannot be imported or does not return a calculator, or a potential that
gives no finite forces on its own lattice stop with a :class:`PotentialSpecError` naming the
cause. The :class:`~ase_vibentropy.potentials.registry.Potential` it builds is named
``eam:FILE``, ``lammps:PAIR_STYLE`` or ``factory:MODULE:CALLABLE``; its ``version`` is a hash of
the spec and of the files it reads, so rows of another file or other parameters never mix.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator
from ase.data import atomic_masses, atomic_numbers, reference_states

from ..errors import MissingDependencyError, PotentialSpecError
from .registry import Potential, _lammpslib, equilibrium_cubic_a0

__all__ = ["SPEC_KINDS", "canonical_spec", "is_potential_spec", "potential_from_spec"]

#: The kinds of user potential a spec can name.
SPEC_KINDS = ("eam", "lammps", "factory")

#: File endings read as EAM files, and their format.
EAM_FORMATS = {".eam.fs": "eam/fs", ".fs": "eam/fs", ".eam.alloy": "eam/alloy", ".alloy": "eam/alloy",
               ".setfl": "eam/alloy"}

#: How an EAM spec turns its tables into functions (``fit``; the first is the default).
EAM_FITS = ("interpolate", "knots")

#: Lattices a spec may name (those of the defect builders).
SPEC_LATTICES = ("bcc", "fcc")

_OPTIONAL_KEYS = {"element", "lattice", "a0", "mass", "fd_step"}
_KEYS = {"eam": _OPTIONAL_KEYS | {"eam", "format", "stride", "fit"},
         "lammps": _OPTIONAL_KEYS | {"lammps"},
         "factory": _OPTIONAL_KEYS | {"factory", "kwargs"}}

_FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _fail(message: str) -> PotentialSpecError:
    return PotentialSpecError(f"potential spec: {message}")


def _eam_format(path: str) -> str | None:
    lower = path.lower()
    return next((fmt for ending, fmt in EAM_FORMATS.items() if lower.endswith(ending)), None)


def is_potential_spec(value: Any) -> bool:
    """True when ``value`` is a spec rather than a built-in name (a mapping, JSON text, a path to
    an EAM, TOML or JSON file, or a ``module:callable`` factory)."""
    if isinstance(value, Mapping):
        return True
    if not isinstance(value, str):
        return False
    text = value.strip()
    return (text.startswith("{") or _eam_format(text) is not None
            or text.lower().endswith((".toml", ".json")) or bool(_FACTORY_PATTERN.match(text)))


def _read_mapping(text: str) -> Mapping[str, Any]:
    """The mapping a string spec stands for."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail(f"not valid JSON ({exc.msg} at character {exc.pos}): {text[:60]!r}") from exc
    if _eam_format(text) is not None:
        return {"eam": text}
    if text.lower().endswith((".toml", ".json")):
        path = Path(text)
        if not path.is_file():
            raise _fail(f"file {text!r} does not exist")
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(path.read_text(encoding="utf-8"))
            else:
                import tomllib

                data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, ValueError) as exc:
            raise _fail(f"cannot read {text!r}: {exc}") from exc
        if not isinstance(data, Mapping):
            raise _fail(f"{text!r} must hold a table (a JSON object), got {type(data).__name__}")
        data = data["potential"] if isinstance(data.get("potential"), Mapping) else data
        return _relative_files(data, path.resolve().parent)
    if _FACTORY_PATTERN.match(text):
        raise _fail(
            f"a factory ({text!r}) needs its element and lattice: give a table, e.g. "
            f'potential = {{factory = "{text}", element = "Cu", lattice = "fcc"}}'
        )
    raise _fail(f"{text!r} is neither a potential name, an EAM file, a spec file nor JSON")


def _relative_files(data: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """``data`` with a relative ``eam`` path taken from ``base`` (a spec file's directory)."""
    out = dict(data)
    if isinstance(out.get("eam"), str):
        path = Path(out["eam"]).expanduser()
        out["eam"] = str(path if path.is_absolute() else base / path)
    return out


def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _absolute_file(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(f"{what} must be a file path, got {value!r}")
    path = Path(value).expanduser()
    if not path.is_file():
        raise _fail(f"{what} {value!r} does not exist (looked for {path.resolve()})")
    return str(path.resolve())


def canonical_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """The complete, validated form of a spec (absolute paths, one ``kind`` key), JSON-ready.

    Raises
    ------
    PotentialSpecError
        Unknown keys, several or no kinds, missing files, malformed values.
    """
    data = dict(_read_mapping(spec) if isinstance(spec, str) else spec)
    # a canonical spec read back: its kind is implied by its key; its file digests must still
    # hold (a worker rebuilding the potential of a recipe must not label with a changed file)
    stated_kind = data.pop("kind", None)
    recorded_files = data.pop("files", None)
    kinds = [kind for kind in SPEC_KINDS if kind in data]
    if len(kinds) != 1:
        raise _fail(
            f"give exactly one of {', '.join(SPEC_KINDS)} (found {', '.join(kinds) or 'none'} "
            f"among the keys {sorted(data)})"
        )
    kind = kinds[0]
    if stated_kind not in (None, kind):
        raise _fail(f"kind = {stated_kind!r} but the spec gives {kind!r}")
    unknown = sorted(set(data) - _KEYS[kind])
    if unknown:
        raise _fail(f"unknown key(s) {unknown} for a {kind} potential; known: {sorted(_KEYS[kind])}")
    out: dict[str, Any] = {"kind": kind}
    if kind == "eam":
        out["eam"] = _absolute_file(data["eam"], "eam file")
        fmt = data.get("format", _eam_format(out["eam"]))
        if fmt not in ("eam/alloy", "eam/fs"):
            raise _fail(
                f"format must be 'eam/alloy' or 'eam/fs' (setfl files), got {fmt!r}; a funcfl "
                "'eam' file runs through the lammps kind (pair_style eam)"
            )
        out["format"] = fmt
        stride = data.get("stride", 1)
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise _fail(f"stride must be an integer >= 1, got {stride!r}")
        out["stride"] = stride
        fit = data.get("fit", "interpolate")
        if fit not in EAM_FITS:
            raise _fail(f"fit must be one of {', '.join(map(repr, EAM_FITS))}, got {fit!r}")
        if fit == "knots" and stride != 1:
            raise _fail(f"stride = {stride} applies to fit = 'interpolate' only; fit = 'knots' uses "
                        "every table point (drop stride)")
        if fit != "interpolate":  # the default stays out: earlier specs keep their version
            out["fit"] = fit
        out["files"] = {out["eam"]: _file_digest(out["eam"])}
    elif kind == "lammps":
        table = data["lammps"]
        if not isinstance(table, Mapping) or not isinstance(table.get("pair_style"), str):
            raise _fail('lammps must be a table with pair_style = "..." and pair_coeff = ["..."]')
        coeffs = table.get("pair_coeff", [])
        coeffs = [coeffs] if isinstance(coeffs, str) else list(coeffs)
        if not coeffs or not all(isinstance(c, str) for c in coeffs):
            raise _fail("lammps.pair_coeff must be a string or a list of strings")
        unknown = sorted(set(table) - {"pair_style", "pair_coeff"})
        if unknown:
            raise _fail(f"unknown key(s) {unknown} in the lammps table; known: pair_coeff, pair_style")
        files: dict[str, str] = {}
        resolved = []
        for line in coeffs:
            words = []
            for word in line.split():
                candidate = Path(word.strip("\"'")).expanduser()
                if ("/" in word or "." in word) and candidate.is_file():
                    word = str(candidate.resolve())
                    files[word] = _file_digest(word)
                elif "/" in word:
                    raise _fail(f"lammps.pair_coeff names {word!r}, which is not a file")
                words.append(word)
            resolved.append(" ".join(words))
        out["lammps"] = {"pair_style": table["pair_style"].strip(), "pair_coeff": resolved}
        out["files"] = files
    else:
        factory = data["factory"]
        if not isinstance(factory, str) or not _FACTORY_PATTERN.match(factory):
            raise _fail(f"factory must be 'package.module:callable', got {factory!r}")
        kwargs = data.get("kwargs", {})
        if not isinstance(kwargs, Mapping):
            raise _fail(f"kwargs must be a table of keyword arguments, got {kwargs!r}")
        out["factory"], out["kwargs"] = factory, dict(kwargs)
    if recorded_files is not None and recorded_files != out.get("files", {}):
        changed = sorted(set(recorded_files) ^ set(out.get("files", {})) | {
            f for f in recorded_files if out.get("files", {}).get(f) not in (None, recorded_files[f])})
        raise _fail(
            f"the file(s) {', '.join(changed)} changed since the potential was first read: rows "
            "labelled now would not match the earlier ones; restore the file or start a new recipe"
        )
    for key in ("element", "lattice", "a0", "mass", "fd_step"):
        if key in data:
            out[key] = data[key]
    if "element" in out and out["element"] not in atomic_numbers:
        raise _fail(f"element {out['element']!r} is not a chemical symbol")
    if "lattice" in out and out["lattice"] not in SPEC_LATTICES:
        raise _fail(f"lattice must be one of {', '.join(SPEC_LATTICES)}, got {out['lattice']!r}")
    for key in ("a0", "mass", "fd_step"):
        if key in out and (isinstance(out[key], bool) or not isinstance(out[key], (int, float))
                           or not out[key] > 0):
            raise _fail(f"{key} must be a positive number, got {out[key]!r}")
    return out


def _factory_callable(path: str):
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _fail(f"cannot import {module_name!r} for the factory {path!r} ({exc})") from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise _fail(f"{module_name!r} has no callable {attribute!r} (factory {path!r})")
    return factory


def _calculator_factory(spec: Mapping[str, Any], element: str, mass: float):
    """A function building a new calculator of ``spec``."""
    if spec["kind"] == "eam":
        from ..eam import tabulated_eam

        return lambda: tabulated_eam(spec["eam"], spec["format"], spec["stride"],
                                     fit=spec.get("fit", "interpolate"))
    if spec["kind"] == "lammps":
        commands = [f"pair_style {spec['lammps']['pair_style']}",
                    *(f"pair_coeff {line}" for line in spec["lammps"]["pair_coeff"])]
        return lambda: _lammpslib(commands, element, mass)
    factory = _factory_callable(spec["factory"])
    kwargs = dict(spec.get("kwargs", {}))

    def build() -> Calculator:
        calc = factory(**kwargs)
        if not hasattr(calc, "get_property") or not hasattr(calc, "get_forces"):
            raise _fail(
                f"the factory {spec['factory']!r} returned {type(calc).__name__}, not an ASE "
                "calculator (it must return an object with get_forces and get_property)"
            )
        return calc

    return build


def _eam_header(path: str, fmt: str) -> dict[str, Any]:
    from matscipy.calculators.eam.io import read_eam

    _, parameters, *_ = read_eam(path, kind=fmt)
    symbols = [str(s).capitalize() for s in np.atleast_1d(parameters.symbols)]
    if len(symbols) != 1:
        raise _fail(f"{path} describes {len(symbols)} elements ({', '.join(symbols)}); one-element files only")
    structure = str(np.atleast_1d(parameters.crystal_structures)[0]).lower()
    header = {"element": symbols[0], "mass": float(np.atleast_1d(parameters.atomic_masses)[0]),
              "a0_guess": float(np.atleast_1d(parameters.lattice_constants)[0])}
    if structure in SPEC_LATTICES:
        header["lattice"] = structure
    return header


def _digest(spec: Mapping[str, Any]) -> int:
    """Revision number of a spec: 31 bits of the sha256 of its canonical JSON with every file
    path replaced by its name (the file's contents enter through their digests), so the same
    files in another directory give the same revision."""
    portable = json.loads(json.dumps(spec))
    names = {path: Path(path).name for path in portable.get("files", {})}
    portable["files"] = {names[path]: digest for path, digest in portable.get("files", {}).items()}
    if "eam" in portable:
        portable["eam"] = Path(portable["eam"]).name
    if "lammps" in portable:
        portable["lammps"]["pair_coeff"] = [" ".join(names.get(w, w) for w in line.split())
                                            for line in portable["lammps"]["pair_coeff"]]
    text = json.dumps(portable, sort_keys=True, separators=(",", ":"))
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def potential_from_spec(spec: str | Mapping[str, Any]) -> Potential:
    """The :class:`Potential` of a user spec (see the module docstring), checked end to end.

    Raises
    ------
    PotentialSpecError
        The spec is malformed, names missing files or an unimportable factory, the factory does
        not return a calculator, or the potential gives no finite forces on its own lattice.
    MissingDependencyError
        A LAMMPS spec without the ``lammps`` extra.
    """
    canonical = canonical_spec(spec)
    return _build(json.dumps(canonical, sort_keys=True))


@lru_cache(maxsize=32)
def _build(text: str) -> Potential:
    spec = json.loads(text)
    header = _eam_header(spec["eam"], spec["format"]) if spec["kind"] == "eam" else {}
    element = spec.get("element", header.get("element"))
    if element is None:
        raise _fail(f"a {spec['kind']} potential needs its element: add element = \"Fe\" (for example)")
    if header and header["element"] != element:
        raise _fail(f"element {element!r} differs from the {header['element']!r} of {spec['eam']}")
    states = reference_states[atomic_numbers[element]] or {}
    lattice = spec.get("lattice", header.get("lattice", states.get("symmetry")))
    if lattice not in SPEC_LATTICES:
        raise _fail(
            f"give the lattice of {element} for this potential (lattice = \"bcc\" or \"fcc\"); "
            f"it cannot be derived ({lattice!r})"
        )
    mass = float(spec.get("mass", header.get("mass", atomic_masses[atomic_numbers[element]])))
    make = _calculator_factory(spec, element, mass)
    try:
        probe = make()
    except (PotentialSpecError, MissingDependencyError):
        raise
    except Exception as exc:  # noqa: BLE001 - the user's calculator: report what it said
        raise _fail(f"building the {spec['kind']} calculator failed: {type(exc).__name__}: {exc}") from exc
    guess = float(spec.get("a0", header.get("a0_guess", states.get("a", 0.0)) or 0.0))
    if not guess > 0:
        raise _fail(f"give a0 (Å) for {element}: there is no lattice constant to start from")
    try:
        a0 = float(spec["a0"]) if "a0" in spec else equilibrium_cubic_a0(make, element, lattice, guess)
        _check_forces(make, element, lattice, a0)
    except (PotentialSpecError, MissingDependencyError):
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. LAMMPS: "Unrecognized pair style"
        raise _fail(
            f"the {spec['kind']} potential fails on a cell of {lattice} {element}: {type(exc).__name__}: {exc}"
        ) from exc
    analytic = hasattr(probe, "get_hessian")
    source = {"eam": lambda: Path(spec["eam"]).name, "lammps": lambda: spec["lammps"]["pair_style"],
              "factory": lambda: spec["factory"]}[spec["kind"]]()
    return Potential(
        name=f"{spec['kind']}:{source}",
        element=element,
        lattice=lattice,
        a0=a0,
        mass=mass,
        description=f"{lattice} {element}, user {spec['kind']} potential {source}",
        analytic_hessian=analytic,
        extra="lammps" if spec["kind"] == "lammps" else None,
        fd_step=float(spec.get("fd_step", 1e-3)),
        version=_digest(spec),
        spec=text,
        _force_factory=make,
        _hessian_factory=make,
    )


def _check_forces(make, element: str, lattice: str, a0: float) -> None:
    """Finite forces on a rattled cell of the potential's lattice (catches broken files and
    pair styles before any job runs)."""
    from ..harmonic import perfect_cubic_supercell

    atoms = perfect_cubic_supercell(element, lattice, a0, 2)
    atoms.rattle(0.01, seed=0)
    atoms.calc = make()
    forces = atoms.get_forces()
    if forces.shape != (len(atoms), 3) or not np.all(np.isfinite(forces)):
        raise _fail(f"the potential gives non-finite forces on a {lattice} {element} cell at a0 = {a0:.4f} Å")
