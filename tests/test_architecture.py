"""The package's layers import one way only (docs/architecture.md draws them).

Every ``import`` of the package's own modules, at module level or inside a function, is read
from the source with ``ast``; a module may import from its own sub-package and from lower
layers, never from its own layer's other modules or from above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ase_vibentropy"

#: Bottom to top. Names are the first component below ``ase_vibentropy``.
LAYERS = [
    {"errors", "units", "_version"},  # names every module shares
    {"_optional", "structure", "dblock", "threads"},  # optional imports, structure checks,
    # database lock, thread counts and the BLAS policy
    {"eam"},                # embedded-atom functions and calculator
    {"harmonic"},           # exact harmonic reference
    {"potentials"},         # named reference potentials
    {"descriptors"},        # per-atom descriptors and their registry
    {"parallel"},           # execution: chunked passes, pools, Dask, BLAS policy
    {"model"},              # the LDML estimator on feature matrices
    {"model_io", "domain"},  # model files; where a prediction can be trusted
    {"predictor"},          # structure-level predictions: descriptor passes, bulk, cache
    {"data"},               # recipes, builders, explorer, pipeline, store
    {"features"},           # training sets from databases
    {"evaluation"},         # metrics, splits, transfer tests
    {"calculator"},         # the ASE calculator
    {"plotting"},           # figures
    {"cli"},                # the vibentropy command
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def _imports(path: Path) -> list[tuple[str, int]]:
    """(top-level package module imported, line) for every import of ase_vibentropy in ``path``."""
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            names = [target + [alias.name] for alias in node.names] if len(target) == 1 else [target]
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        else:
            continue
        for name in names:
            if name[0] == "ase_vibentropy" and len(name) > 1:
                found.append((name[1], node.lineno))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_package_module_belongs_to_a_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())}
    assert tops - set(LEVEL) == set(), "add the new module to LAYERS and docs/architecture.md"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for target, line in _imports(path):
        if target == own or target not in LEVEL:
            continue  # its own sub-package, or a name such as __version__
        assert LEVEL[target] < LEVEL[own], (
            f"{path.relative_to(PACKAGE)}:{line} imports {target} (layer {LEVEL[target]}) from "
            f"layer {LEVEL[own]} ({own}): imports must point to lower layers"
        )
