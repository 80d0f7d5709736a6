"""Database recipes: a TOML file that fixes everything a defect database is made from.

Example (see ``examples/recipes/``)::

    potential = "fe-mendelev2003"   # element, lattice and a0 default to the potential's
    sizes = [8]                     # cell edges in conventional cells
    strains = [0.0, 0.01]           # isotropic strains (fractions)
    temperature = 300.0             # K
    seed = 2020

    [reference]                     # harmonic reference backend
    hessian = "analytic"            # auto | analytic | phonopy | fd
    solver = "logdet"               # auto | dense | logdet
    fmax = 1e-5                     # eV/Å, relaxation before the Hessian
    local = "auto"                  # local entropies: true | false | "auto" (dense route only)

    [exploration]
    method = "dimer"                # none | random | dimer
    minima_per_job = 4
    store_saddles = false           # dimer: label and store the saddles crossed between minima
    saddles_per_job = 0             # dimer: explore on until this many saddles are stored
    neb_images = 0                  # dimer: climbing-image NEB between each saddle's minima
    stall_events = 0                # dimer: stop after this many events that found nothing new

    [families.I2]                   # V<n>, I<n>, random, cascade
    count = 8                       # configurations per (size, strain)
    kind = "dumbbell"

    [descriptors.afs]               # optional: store Σ_i D_i of each row and of its bulk
    n_max = 20                      # (provider parameters; keyed by the provider hash)

Validation is strict: an unknown field, a wrong type or range, or an unknown name raises
:class:`~ase_vibentropy.errors.RecipeError` whose message starts with the dotted path of the
offending field (``families.V2.count: ...``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, RecipeError, UnknownNameError

try:  # Python >= 3.11
    import tomllib as _toml
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as _toml  # a core dependency on Python < 3.11

#: Exploration methods: ``none`` relaxes the built configuration only.
EXPLORATION_METHODS = ("none", "random", "dimer")
#: Exploration keys left out of the recipe hash and the job ids while unset (0), so that recipes
#: written before they existed keep both.
OPTIONAL_EXPLORATION_KEYS = ("saddles_per_job", "neb_images", "stall_events")

#: Largest isotropic strain accepted, as a fraction (the bulk reference allows 10 %).
MAX_STRAIN = 0.1

_CLUSTER_FAMILY = re.compile(r"^(V|I)([1-9][0-9]*)$")


@dataclass(frozen=True)
class FamilySpec:
    """One defect family of a recipe.

    Attributes
    ----------
    name : str
        ``V<n>`` (vacancy cluster), ``I<n>`` (self-interstitial cluster), ``random`` (Frenkel
        pairs from random displacements) or ``cascade`` (randomised sphere).
    count : int
        Configurations wanted per (size, strain).
    n_vacancies, n_interstitials : int
        Defects built (cluster families; 0 for ``random``/``cascade``).
    arrangement : str
        Vacancy clusters: ``compact`` | ``scattered``.
    kind : str
        Interstitial clusters: ``dumbbell`` | ``crowdion``.
    n_pairs : tuple[int, int]
        ``random``: inclusive range of displaced atoms per configuration.
    radius : float
        ``cascade``: sphere radius, Å.
    """

    name: str
    count: int
    n_vacancies: int = 0
    n_interstitials: int = 0
    arrangement: str = "compact"
    kind: str = "dumbbell"
    n_pairs: tuple[int, int] = (1, 1)
    radius: float = 0.0

    @property
    def is_cluster(self) -> bool:
        """True for V<n>/I<n> families (the ones the explorers act on)."""
        return bool(_CLUSTER_FAMILY.match(self.name))


@dataclass(frozen=True)
class ReferenceSpec:
    """Harmonic reference backend: Hessian source, solver, relaxation criterion, local entropies."""

    hessian: str = "auto"
    solver: str = "auto"
    fmax: float = 1e-5
    local: bool | str = "auto"


@dataclass(frozen=True)
class ExplorationSpec:
    """Exploration settings shared by the cluster families."""

    method: str = "none"
    minima_per_job: int = 1
    max_events: int = 0
    push_amplitude: float = 0.4
    step_over: float = 0.3
    dimer_fmax: float = 0.02
    dimer_steps: int = 400
    quench_fmax: float = 1e-3
    store_saddles: bool = False
    saddles_per_job: int = 0
    neb_images: int = 0
    stall_events: int = 0


@dataclass(frozen=True)
class Recipe:
    """A validated recipe (see the module docstring for the TOML layout)."""

    potential: str
    element: str
    lattice: str
    a0: float
    sizes: tuple[int, ...]
    strains: tuple[float, ...]
    temperature: float
    seed: int
    reference: ReferenceSpec
    exploration: ExplorationSpec
    families: tuple[FamilySpec, ...]
    descriptors: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    name: str = ""
    source: str = field(default="", compare=False)

    @property
    def potential_identity(self) -> str:
        """The potential as the hash and the job ids see it: the built-in name, or for a user
        spec its name and revision (no file paths, so a moved project keeps its jobs)."""
        if not self.potential.lstrip().startswith("{"):
            return self.potential
        from ..potentials import get_potential, labelling_potential

        potential = get_potential(self.potential)
        return labelling_potential(potential.name, potential.version)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable form (the ``source`` path left out, the potential by its
        :attr:`potential_identity`)."""
        data = asdict(self)
        data.pop("source")
        data["potential"] = self.potential_identity
        if not self.exploration.store_saddles:  # recipes without the option keep their hash
            data["exploration"].pop("store_saddles")
        for key in OPTIONAL_EXPLORATION_KEYS:  # the same for these when unset
            if not data["exploration"][key]:
                data["exploration"].pop(key)
        return data

    @property
    def hash(self) -> str:
        """First 16 hex digits of the sha256 of the canonical JSON of :meth:`to_dict`."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_TOP_FIELDS = {
    "name", "potential", "element", "lattice", "a0", "sizes", "strains", "temperature", "seed",
    "reference", "exploration", "families", "descriptors",
}


def _fail(path: str, message: str) -> RecipeError:
    return RecipeError(f"{path}: {message}")


def _reject_unknown(table: dict[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        where = f"{path}." if path else ""
        raise _fail(
            f"{where}{unknown[0]}",
            f"unknown field; allowed fields here: {', '.join(sorted(allowed))}",
        )


def _int(value: Any, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"must be an integer, got {value!r}")
    if value < minimum:
        raise _fail(path, f"must be >= {minimum}, got {value}")
    return int(value)


def _float(value: Any, path: str, low: float | None = None, high: float | None = None,
           open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(path, f"must be a finite number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (open_low and value == low)):
        raise _fail(path, f"must be {'>' if open_low else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise _fail(path, f"must be <= {high}, got {value}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"must be true or false, got {value!r}")
    return value


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(path, f"must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _table(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"must be a table ([{path}]), got {type(value).__name__}")
    return value


def _parse_family(name: str, table: Any) -> FamilySpec:
    path = f"families.{name}"
    table = _table(table, path)
    cluster = _CLUSTER_FAMILY.match(name)
    if cluster:
        extra = {"arrangement"} if cluster.group(1) == "V" else {"kind"}
    elif name == "random":
        extra = {"n_pairs"}
    elif name == "cascade":
        extra = {"radius"}
    else:
        raise _fail(path, "unknown family name; use V<n>, I<n> (n >= 1), random or cascade")
    _reject_unknown(table, {"count"} | extra, path)
    if "count" not in table:
        raise _fail(f"{path}.count", "missing: number of configurations per (size, strain)")
    count = _int(table["count"], f"{path}.count", 0)
    if cluster:
        n = int(cluster.group(2))
        if cluster.group(1) == "V":
            from .builders import VACANCY_ARRANGEMENTS

            arrangement = _choice(table.get("arrangement", "compact"), f"{path}.arrangement",
                                  VACANCY_ARRANGEMENTS)
            return FamilySpec(name, count, n_vacancies=n, arrangement=arrangement)
        from .builders import INTERSTITIAL_KINDS

        kind = _choice(table.get("kind", "dumbbell"), f"{path}.kind", INTERSTITIAL_KINDS)
        return FamilySpec(name, count, n_interstitials=n, kind=kind)
    if name == "random":
        raw = table.get("n_pairs", [1, 10])
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = [raw, raw]
        if not isinstance(raw, list) or len(raw) != 2:
            raise _fail(f"{path}.n_pairs", f"must be an integer or [min, max], got {raw!r}")
        low = _int(raw[0], f"{path}.n_pairs", 1)
        high = _int(raw[1], f"{path}.n_pairs", low)
        return FamilySpec(name, count, n_pairs=(low, high))
    if "radius" not in table:
        raise _fail(f"{path}.radius", "missing: radius of the randomised sphere, Å")
    return FamilySpec(name, count, radius=_float(table["radius"], f"{path}.radius", 0.0, open_low=True))


def _relative_to(spec: Any, source: str) -> Any:
    """``spec`` with the relative file paths of an EAM spec taken from the recipe's directory."""
    if not source:
        return spec
    base = Path(source).resolve().parent
    if isinstance(spec, str):
        path = Path(spec).expanduser()
        if not path.is_absolute() and (base / path).is_file():
            return str(base / path)
        return spec
    if isinstance(spec, dict) and isinstance(spec.get("eam"), str):
        path = Path(spec["eam"]).expanduser()
        return {**spec, "eam": str(path if path.is_absolute() else base / path)}
    return spec


def parse_recipe(data: dict[str, Any], source: str = "") -> Recipe:
    """Validate a recipe given as a dict (the parsed TOML) and fill in the defaults.

    Raises
    ------
    RecipeError
        The message starts with the dotted path of the offending field.
    """
    from ..harmonic import HESSIAN_METHODS, SOLVERS
    from ..potentials import get_potential

    data = _table(data, "recipe")
    _reject_unknown(data, _TOP_FIELDS, "")
    if "potential" not in data:
        raise _fail("potential", "missing: name of the reference potential, e.g. 'fe-mendelev2003'")
    spec = data["potential"]
    if not isinstance(spec, (str, dict)):
        raise _fail("potential", f"must be a name, a file path or a table, got {spec!r}")
    try:
        potential = get_potential(_relative_to(spec, source))
    except (UnknownNameError, MissingDependencyError) as exc:
        raise _fail("potential", str(exc)) from exc
    element = data.get("element", potential.element)
    if element != potential.element:
        raise _fail("element", f"potential {potential.name!r} describes {potential.element}, not {element!r}")
    from .builders import DEFECT_LATTICES

    lattice = _choice(data.get("lattice", potential.lattice), "lattice", DEFECT_LATTICES)
    a0 = _float(data.get("a0", potential.a0), "a0", 0.0, open_low=True)

    sizes = data.get("sizes")
    if not isinstance(sizes, list) or not sizes:
        raise _fail("sizes", f"must be a non-empty list of cell edges in conventional cells, got {sizes!r}")
    sizes_t = tuple(_int(s, f"sizes[{i}]", 1) for i, s in enumerate(sizes))
    strains = data.get("strains", [0.0])
    if not isinstance(strains, list) or not strains:
        raise _fail("strains", f"must be a non-empty list of isotropic strains (fractions), got {strains!r}")
    strains_t = tuple(_float(s, f"strains[{i}]", -MAX_STRAIN, MAX_STRAIN) for i, s in enumerate(strains))
    if len(set(sizes_t)) != len(sizes_t) or len(set(strains_t)) != len(strains_t):
        raise _fail("sizes" if len(set(sizes_t)) != len(sizes_t) else "strains", "contains duplicates")
    temperature = _float(data.get("temperature", 300.0), "temperature", 0.0, open_low=True)
    seed = _int(data.get("seed", 0), "seed", 0)
    name = data.get("name", "")
    if not isinstance(name, str):
        raise _fail("name", f"must be a string, got {name!r}")

    ref = _table(data.get("reference", {}), "reference")
    _reject_unknown(ref, {"hessian", "solver", "fmax", "local"}, "reference")
    local = ref.get("local", "auto")
    if local not in (True, False, "auto"):
        raise _fail("reference.local", f"must be true, false or \"auto\", got {local!r}")
    reference = ReferenceSpec(
        hessian=_choice(ref.get("hessian", "auto"), "reference.hessian", tuple(HESSIAN_METHODS)),
        # the embedding needs a perfect-lattice reference the recipe's jobs do not pass
        solver=_choice(ref.get("solver", "auto"), "reference.solver",
                       tuple(s for s in SOLVERS if s != "embedding")),
        fmax=_float(ref.get("fmax", 1e-5), "reference.fmax", 0.0, open_low=True),
        local=local,
    )
    if reference.hessian == "analytic" and not potential.analytic_hessian:
        raise _fail("reference.hessian", f"potential {potential.name!r} has no analytic Hessian; "
                    "use \"phonopy\" or \"fd\"")
    if reference.solver == "logdet" and local is True:
        raise _fail("reference.local", "local entropies need the spectrum: use solver = \"dense\"")

    exp = _table(data.get("exploration", {}), "exploration")
    defaults = ExplorationSpec()
    _reject_unknown(exp, set(asdict(defaults)), "exploration")
    exploration = ExplorationSpec(
        method=_choice(exp.get("method", "none"), "exploration.method", EXPLORATION_METHODS),
        minima_per_job=_int(exp.get("minima_per_job", 1), "exploration.minima_per_job", 1),
        max_events=_int(exp.get("max_events", 0), "exploration.max_events", 0),
        push_amplitude=_float(exp.get("push_amplitude", defaults.push_amplitude),
                              "exploration.push_amplitude", 0.0, open_low=True),
        step_over=_float(exp.get("step_over", defaults.step_over), "exploration.step_over", 0.0, open_low=True),
        dimer_fmax=_float(exp.get("dimer_fmax", defaults.dimer_fmax), "exploration.dimer_fmax", 0.0, open_low=True),
        dimer_steps=_int(exp.get("dimer_steps", defaults.dimer_steps), "exploration.dimer_steps", 1),
        quench_fmax=_float(exp.get("quench_fmax", defaults.quench_fmax), "exploration.quench_fmax",
                           0.0, open_low=True),
        store_saddles=_bool(exp.get("store_saddles", False), "exploration.store_saddles"),
        saddles_per_job=_int(exp.get("saddles_per_job", 0), "exploration.saddles_per_job", 0),
        neb_images=_int(exp.get("neb_images", 0), "exploration.neb_images", 0),
        stall_events=_int(exp.get("stall_events", 0), "exploration.stall_events", 0),
    )
    if exploration.store_saddles and exploration.method != "dimer":
        raise _fail("exploration.store_saddles", "saddles are crossed by the dimer explorer only: "
                    "set method = \"dimer\"")
    for key in ("saddles_per_job", "neb_images"):
        if getattr(exploration, key) and not exploration.store_saddles:
            raise _fail(f"exploration.{key}", "asks the explorer for saddles, which are kept "
                        "only with store_saddles = true")
    if exploration.stall_events and exploration.method != "dimer":
        raise _fail("exploration.stall_events", "counts activation events of the dimer explorer: "
                    "set method = \"dimer\"")

    fam_table = _table(data.get("families", {}), "families")
    if not fam_table:
        raise _fail("families", "no defect family: add at least one [families.<name>] table")
    families = tuple(_parse_family(n, t) for n, t in sorted(fam_table.items()))

    desc_table = _table(data.get("descriptors", {}), "descriptors")
    descriptors = []
    for dname, params in sorted(desc_table.items()):
        params = _table(params, f"descriptors.{dname}")
        descriptors.append((dname, tuple(sorted(params.items()))))
    if descriptors:
        from .. import descriptors as registry

        known = registry.available()
        for dname, _ in descriptors:
            if dname not in known:
                raise _fail(f"descriptors.{dname}", f"unknown descriptor; known: {', '.join(known)}")

    return Recipe(
        potential=potential.spec or potential.name, element=element, lattice=lattice, a0=a0, sizes=sizes_t,
        strains=strains_t, temperature=temperature, seed=seed, reference=reference,
        exploration=exploration, families=families, descriptors=tuple(descriptors), name=name,
        source=source,
    )


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a TOML recipe file.

    Raises
    ------
    RecipeError
        No such file, a directory, invalid TOML (with the parser's line and column) or an
        invalid field.
    OSError
        The file exists but cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise RecipeError(
            f"recipe file {str(path)!r} does not exist: give the path of a TOML recipe "
            "(examples: examples/recipes/*.toml; fields in docs/pipeline.md)"
        )
    if path.is_dir():
        raise RecipeError(f"{str(path)!r} is a directory, not a recipe file: give a .toml file")
    text = path.read_text()
    try:
        data = _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from exc
    return parse_recipe(data, source=str(path))
