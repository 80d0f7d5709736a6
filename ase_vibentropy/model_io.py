"""Versioned, human-readable LDML model files and the shipped-model registry.

A model file is one JSON document::

    {
      "format": "ase-vibentropy-ldml",
      "format_version": 3,
      "package_version": "0.2.0",
      "descriptor": {"name": "afs", "params": {...}, "hash": "3f2a..."},
      "element": "Fe", "lattice": "bcc", "a0": 2.855324,
      "temperature_K": 300.0, "target": "joint", "per_atom_constant": true,
      "estimator_params": {...BayesianRidge priors, scale_features...},
      "coef": [...], "per_atom_constant_kB": ..., "sigma": [[...], ...],
      "alpha": ..., "total_alpha": ..., "lambda": ..., "feature_scale": [...], "n_iter": ...,
      "std_scale": ..., "training_summary": {...}, "metrics": {...}
    }

Version 2 added ``std_scale``, the calibration factor of the predictive std (version-1 files
are read with 1, the Bayesian std); a version-1 reader refuses version-2 files rather than
report an uncalibrated std.

Version 3 added ``core`` (below); version-2 files are read as models without a core, and a
version-2 reader refuses version-3 files rather than predict without the core.

Migration models (``"target": "migration"``) also hold ``migration_constant_kB``, b, and their
``sigma`` is the covariance of (w, b). A migration model with an exact core holds
``"core": {"radius_A": R, "moved_A": m}`` (:mod:`ase_vibentropy.harmonic.jump_core`); its
``coef`` weighs the outer atoms' descriptor changes only.

Floats are written with Python's shortest round-trip ``repr``, so save then load is bit-exact.
``coef`` is in k_B per descriptor unit, ``sigma`` the posterior covariance of (w, c) in the same
(unscaled) basis.

Shipped models live in ``ase_vibentropy/pretrained/<name>.json`` and are loaded by name.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .errors import (
    DescriptorMismatchError,
    ModelFileError,
    ModelVersionError,
    RetiredPotentialError,
    UnknownNameError,
)
from .model import LDMLModel

__all__ = [
    "DEFAULT_MODEL",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "check_output_path",
    "load_model",
    "model_to_dict",
    "model_from_dict",
    "save_model",
    "shipped_models",
]

FORMAT_NAME = "ase-vibentropy-ldml"
#: Bump when the layout or the meaning of a field changes; readers refuse newer versions.
FORMAT_VERSION = 3
#: Shipped model used when no ``--model`` is given.
DEFAULT_MODEL = "fe-mendelev2003-afs-stiffness"

_PRIOR_PARAMS = (
    "scale_features",
    "max_iter",
    "tol",
    "alpha_1",
    "alpha_2",
    "lambda_1",
    "lambda_2",
    "alpha_init",
    "lambda_init",
)


class UnknownModelError(UnknownNameError, ModelFileError):
    """No shipped model has that name and no file exists at that path."""


def shipped_models() -> list[str]:
    """Names of the model files shipped in ``ase_vibentropy/pretrained/`` (without ``.json``)."""
    folder = resources.files("ase_vibentropy") / "pretrained"
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(e.name[: -len(".json")] for e in entries if e.name.endswith(".json"))


# ---------------------------------------------------------------------- serialisation
def _array(values: np.ndarray) -> list:
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).all():
        raise ModelFileError("the model holds NaN or infinite values and cannot be saved")
    return values.tolist()


def _core_params(core: Any, source: str) -> dict[str, float]:
    """LDMLModel's ``core_radius`` and ``core_moved`` from a file's ``core`` entry (or none)."""
    if core is None:
        return {}
    try:
        return {"core_radius": float(core["radius_A"]), "core_moved": float(core["moved_A"])}
    except (TypeError, KeyError, ValueError) as error:
        raise ModelFileError(f"{source}: 'core' must be {{\"radius_A\": R, \"moved_A\": m}} "
                             f"(Å), got {core!r}") from error


def model_to_dict(model: LDMLModel) -> dict[str, Any]:
    """The JSON-serialisable content of a fitted model file (see the module docstring)."""
    model._check_fitted()
    provider = model.descriptor_provider()
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "descriptor": {"name": provider.name, "params": provider.params, "hash": provider.hash},
        "element": model.element,
        "lattice": model.lattice,
        "a0": None if model.a0 is None else float(model.a0),
        "temperature_K": float(model.temperature),
        "target": model.target,
        "per_atom_constant": bool(model.per_atom_constant),
        "estimator_params": {k: getattr(model, k) for k in _PRIOR_PARAMS},
        "coef": _array(model.coef_),
        "per_atom_constant_kB": float(model.per_atom_constant_),
        "sigma": _array(model.sigma_),
        "alpha": float(model.alpha_),
        "total_alpha": float(getattr(model, "total_alpha_", model.alpha_)),
        "lambda": float(model.lambda_),
        "feature_scale": _array(model.feature_scale_),
        "n_iter": int(model.n_iter_),
        "std_scale": float(getattr(model, "std_scale_", 1.0)),
        "n_features_in": int(model.n_features_in_),
        "training_summary": getattr(model, "training_summary_", {}),
        "metrics": getattr(model, "metrics_", {}),
        **({"migration_constant_kB": float(model.migration_constant_)}
           if model.target == "migration" else {}),
        **({"core": {"radius_A": float(model.core_radius), "moved_A": float(model.core_moved)}}
           if model.core_radius is not None else {}),
    }


def _dumps(value: Any, indent: int = 0) -> str:
    """JSON with dicts indented, number lists on one line and matrices one row per line."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{json.dumps(str(k))}: {_dumps(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        rows = [f"{pad}{json.dumps(v, allow_nan=False)}" for v in value]
        return "[\n" + ",\n".join(rows) + "\n" + "  " * indent + "]"
    return json.dumps(value, allow_nan=False)


def check_output_path(path: str | Path) -> Path:
    """Raise :class:`ModelFileError` unless a model file can be written at ``path``.

    Training commands call this before any computation, so a typo in ``-o`` never costs a fit.
    """
    import os

    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise ModelFileError(f"output {str(path)!r} is a directory: give a file name such as model.json")
    if not folder.is_dir():
        raise ModelFileError(
            f"cannot write the model to {str(path)!r}: folder {str(folder)!r} does not exist "
            "(or is not a folder); create it first or choose another -o path"
        )
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ModelFileError(
            f"cannot write the model to {str(path)!r}: permission denied; choose a writable -o path"
        )
    return path


def save_model(model: LDMLModel, path: str | Path) -> Path:
    """Write a fitted model to ``path`` (JSON, see the module docstring); return the path.

    Raises
    ------
    ModelFileError
        The path cannot be written (missing folder, permissions).
    """
    path = check_output_path(path)
    text = _dumps(model_to_dict(model)) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic: an interrupted save never leaves a truncated model file
    except OSError as exc:
        raise ModelFileError(f"cannot write the model to {str(path)!r}: {exc}") from exc
    return path


def _require(doc: dict[str, Any], key: str, source: str) -> Any:
    if key not in doc:
        raise ModelFileError(f"{source}: model file has no {key!r} field; it is corrupt")
    return doc[key]


def _float_array(value: Any, key: str, source: str, ndim: int) -> np.ndarray:
    try:
        array = np.array(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{source}: field {key!r} is not a numeric array ({exc})") from exc
    if array.ndim != ndim:
        raise ModelFileError(f"{source}: field {key!r} must be {ndim}-dimensional")
    return array


def model_from_dict(doc: Any, source: str = "model") -> LDMLModel:
    """Rebuild a fitted :class:`LDMLModel` from a model-file dictionary.

    Raises
    ------
    ModelVersionError
        ``format_version`` is newer than this package reads.
    ModelFileError
        Missing or malformed fields, or a descriptor plug-in that is not installed.
    DescriptorMismatchError
        The rebuilt descriptor's hash differs from the stored one.
    """
    from . import descriptors

    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{source}: not an ase-vibentropy model file (format != {FORMAT_NAME!r})")
    version = _require(doc, "format_version", source)
    if not isinstance(version, int):
        raise ModelFileError(f"{source}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ModelVersionError(
            f"{source}: model file format version {version} is newer than the version "
            f"{FORMAT_VERSION} this ase-vibentropy {__version__} reads; upgrade ase-vibentropy"
        )
    desc = _require(doc, "descriptor", source)
    try:
        name, params, stored_hash = desc["name"], desc["params"], desc["hash"]
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"{source}: descriptor field is incomplete ({exc})") from exc
    try:
        provider = descriptors.get(name, **params)
    except RetiredPotentialError as exc:
        raise ModelFileError(
            f"{source}: the model's descriptor {name!r} is computed with a retired potential: "
            f"{exc}. Retrain the model on labels and descriptors of {exc.replacement!r}"
        ) from exc
    except UnknownNameError as exc:
        raise ModelFileError(
            f"{source}: the model needs the descriptor plug-in {name!r}, which is not installed "
            f"(available: {', '.join(descriptors.available()) or 'none'}); install the package "
            "that provides it"
        ) from exc
    if provider.hash != stored_hash:
        raise DescriptorMismatchError(
            f"{source}: descriptor {name!r} rebuilt from the stored parameters has hash "
            f"{provider.hash}, the model was trained with {stored_hash}: the descriptor "
            "implementation changed; retrain the model with this version"
        )
    estimator = dict(_require(doc, "estimator_params", source))
    model = LDMLModel(
        descriptor=name,
        descriptor_params=params,
        target=_require(doc, "target", source),
        per_atom_constant=bool(_require(doc, "per_atom_constant", source)),
        temperature=float(_require(doc, "temperature_K", source)),
        element=doc.get("element"),
        lattice=doc.get("lattice"),
        a0=doc.get("a0"),
        **{k: estimator[k] for k in _PRIOR_PARAMS if k in estimator},
        **_core_params(doc.get("core"), source),
    )
    model._check_target()
    model.coef_ = _float_array(_require(doc, "coef", source), "coef", source, 1)
    model.per_atom_constant_ = float(_require(doc, "per_atom_constant_kB", source))
    model.migration_constant_ = (float(_require(doc, "migration_constant_kB", source))
                                 if model.target == "migration" else 0.0)
    model.sigma_ = _float_array(_require(doc, "sigma", source), "sigma", source, 2)
    model.feature_scale_ = _float_array(_require(doc, "feature_scale", source), "feature_scale", source, 1)
    model.alpha_ = float(_require(doc, "alpha", source))
    # files without it were fitted with the totals as exact as the formation rows
    model.total_alpha_ = float(doc.get("total_alpha", model.alpha_))
    model.lambda_ = float(_require(doc, "lambda", source))
    model.n_iter_ = int(doc.get("n_iter", 0))
    model.std_scale_ = float(doc.get("std_scale", 1.0))  # files without it: the Bayesian std
    if not (np.isfinite(model.std_scale_) and model.std_scale_ > 0):
        raise ModelFileError(f"{source}: std_scale must be a positive number, got {model.std_scale_}")
    model.n_features_in_ = int(_require(doc, "n_features_in", source))
    model.training_summary_ = dict(doc.get("training_summary", {}))
    model.package_version_ = str(doc.get("package_version", "unknown"))
    model.metrics_ = dict(doc.get("metrics", {}))
    n_cols = model.n_features_in_ + int(model._constant_column is not None)
    if (
        model.coef_.shape != (model.n_features_in_,)
        or model.sigma_.shape != (n_cols, n_cols)
        or model.n_features_in_ != provider.dim
    ):
        raise ModelFileError(
            f"{source}: array shapes (coef {model.coef_.shape}, sigma {model.sigma_.shape}) do not "
            f"match the descriptor dimension {provider.dim}; the file is corrupt"
        )
    return model


def load_model(name_or_path: str | Path) -> LDMLModel:
    """Load a model by shipped name (``"fe-mendelev2003-afs"``) or from a JSON file path.

    Raises
    ------
    UnknownModelError
        Neither a shipped name nor an existing file (the message lists the shipped names).
    ModelFileError, ModelVersionError, DescriptorMismatchError
        See :func:`model_from_dict`; truncated or invalid JSON gives ModelFileError.
    """
    path = Path(name_or_path)
    if path.is_file():
        source = str(path)
        text = path.read_text(encoding="utf-8")
    else:
        name = str(name_or_path)
        resource = resources.files("ase_vibentropy") / "pretrained" / f"{name}.json"
        if not resource.is_file():
            shipped = shipped_models()
            raise UnknownModelError(
                f"no model file {str(name_or_path)!r} and no shipped model of that name; shipped "
                f"models: {', '.join(shipped) if shipped else 'none yet'} (train one with "
                "'vibentropy train DB --descriptor afs --target joint -o model.json')"
            )
        source = f"shipped model {name!r}"
        text = resource.read_text(encoding="utf-8")
    if not text.lstrip().startswith("{"):
        raise ModelFileError(
            f"{source} is not a model file: a model is a JSON object written by 'vibentropy "
            "train -o MODEL.json' (or a shipped name), and this file does not start with '{' "
            "(is it a structure file? structures are the FILE argument, models go to --model)"
        )
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ModelFileError(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}); the file is truncated "
            "or corrupt: re-save or re-download it"
        ) from exc
    return model_from_dict(doc, source)


def _reject_constant(token: str) -> float:
    raise ModelFileError(f"model file contains {token}, which is not a valid model value")

