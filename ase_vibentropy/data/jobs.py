"""The deterministic job list of a recipe.

A job is the unit of work and of storage: its rows are written in one transaction and a rerun
skips it when its ``job_id`` is in the database. There are two kinds:

- ``bulk``: the perfect lattice of one (size, strain), labelled once and reused by every
  defect job of that cell (its S_bulk, N_b enter Sf = S - (N/N_b) S_bulk, Eq. 3);
- ``defect``: one starting configuration of a family at one (size, strain), explored into up
  to ``n_minima`` distinct minima.

A job id is readable (``I2-n8-s+0.0100-r003``) and ends with a digest of everything that
determines the job's result, so editing one family of a recipe re-runs only that family's
jobs. Seeds do not depend on the strain: the strained copies of a configuration start from
the same built structure, as in the paper's database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from .recipe import OPTIONAL_EXPLORATION_KEYS, FamilySpec, Recipe


@dataclass(frozen=True)
class Job:
    """One unit of work.

    Attributes
    ----------
    job_id : str
        Stable identifier (see the module docstring).
    kind : str
        ``bulk`` or ``defect``.
    family : str
        Family name (``bulk`` for bulk jobs).
    n_cells : int
        Cell edge in conventional cells.
    strain : float
        Isotropic strain (fraction).
    replica : int
        Index of the job within its (family, size, strain).
    n_minima : int
        Distinct minima wanted from this job.
    seed : int
        Seed of the job's own ``numpy.random.Generator``.
    """

    job_id: str
    kind: str
    family: str
    n_cells: int
    strain: float
    replica: int
    n_minima: int
    seed: int


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from the sha256 of the parts' text (stable across runs and platforms)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def bulk_job_id(n_cells: int, strain: float) -> str:
    """Readable prefix of the bulk job id of one (size, strain)."""
    return f"bulk-n{n_cells}-s{strain:+.4f}"


def make_jobs(recipe: Recipe) -> list[Job]:
    """All jobs of ``recipe``: bulk jobs first, then defect jobs replica by replica.

    Cluster families with an explorer get ceil(count / minima_per_job) jobs per (size,
    strain), each asking for minima_per_job minima (fewer in the last one); ``random`` and
    ``cascade`` families, and exploration method ``none``, get one job per configuration.
    """
    # Descriptors are left out: they do not change a label, and `vibentropy featurize` adds
    # the sums of a new descriptor to finished rows without relabelling them.
    common = (recipe.potential_identity, recipe.element, recipe.lattice, recipe.a0, recipe.temperature,
              asdict(recipe.reference))
    jobs: list[Job] = []
    for n_cells in recipe.sizes:
        for strain in recipe.strains:
            prefix = bulk_job_id(n_cells, strain)
            jobs.append(Job(f"{prefix}-{_digest(common, n_cells, strain)}", "bulk", "bulk",
                            n_cells, strain, 0, 1, 0))
    for family in recipe.families:
        per_job = _minima_per_job(recipe, family)
        n_jobs = -(-family.count // per_job)
        # The count is left out so that raising it adds jobs and keeps the finished ones:
        # a database grows over several runs (replica and n_minima fix each job's content).
        family_fields = {k: v for k, v in asdict(family).items() if k != "count"}
        # storing saddles adds rows without changing the minima: the same jobs either way;
        # asking for saddles explores further (a new job), and recipes without it keep theirs
        exploration = {k: v for k, v in asdict(recipe.exploration).items()
                       if k != "store_saddles" and not (k in OPTIONAL_EXPLORATION_KEYS and not v)}
        fam_digest = (common, family_fields, exploration if family.is_cluster else None)
        for n_cells in recipe.sizes:
            for strain in recipe.strains:
                for replica in range(n_jobs):
                    n_minima = min(per_job, family.count - replica * per_job)
                    seed = derive_seed(recipe.seed, family.name, n_cells, replica)
                    readable = f"{family.name}-n{n_cells}-s{strain:+.4f}-r{replica:03d}"
                    digest = _digest(fam_digest, n_cells, strain, replica, n_minima, seed)
                    jobs.append(Job(f"{readable}-{digest}", "defect", family.name, n_cells,
                                    strain, replica, n_minima, seed))
    # Replica-major order: a run stopped part-way leaves every family, size and strain
    # represented (a balanced database), and the next run continues with the rest.
    bulk_jobs = [j for j in jobs if j.kind == "bulk"]
    defect_jobs = sorted((j for j in jobs if j.kind != "bulk"), key=lambda j: j.replica)
    return bulk_jobs + defect_jobs


def _minima_per_job(recipe: Recipe, family: FamilySpec) -> int:
    if family.is_cluster and recipe.exploration.method != "none":
        return recipe.exploration.minima_per_job
    return 1
