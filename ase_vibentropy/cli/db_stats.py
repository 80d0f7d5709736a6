"""``vibentropy db-stats``: what a defect database holds (counts, S_f ranges, histograms).

No physics here: :func:`ase_vibentropy.data.store.database_statistics` collects the numbers;
this module prints them and optionally draws the histograms of the paper's Fig. 4-5.
"""

from __future__ import annotations

import argparse
import json

DESCRIPTION = """Counts of configurations per family, cell size and strain in an ase.db defect
database, the ranges of the formation entropy S_f (k_B), and the number of stored non-minima
(rows with imaginary modes, kept without entropies). --plot draws the distributions of the
number of vacancies and interstitials per configuration and of S_f per family (the paper's
Fig. 4-5)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``db-stats`` sub-command."""
    parser = subparsers.add_parser(
        "db-stats",
        help="counts per family, size and strain and S_f ranges of a database",
        description=DESCRIPTION,
        epilog="example:\n  vibentropy db-stats fe.db --plot fe_stats.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("db", metavar="DB", help="ase.db path or URL written by 'vibentropy generate'")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="write histograms of defect counts and S_f (needs the plot extra)")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")
    parser.add_argument("--distinct", action="store_true",
                        help="also count distinct minima across jobs (energy + inertia rule) and "
                             "distinct saddles (energy, entropy and barriers)")
    parser.set_defaults(func=run)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _plot(stats: dict, path: str) -> None:
    from .._optional import import_optional

    matplotlib = import_optional("matplotlib", "plot", "db-stats --plot")
    matplotlib.use("Agg")
    plt = import_optional("matplotlib.pyplot", "plot", "db-stats --plot")
    import numpy as np

    fig, (ax_counts, ax_sf) = plt.subplots(1, 2, figsize=(10, 4))
    n_vac, n_int = np.asarray(stats["n_vac"]), np.asarray(stats["n_int"])
    top = int(max(n_vac.max(initial=0), n_int.max(initial=0)))
    bins = np.arange(-0.5, top + 1.5)
    ax_counts.hist([n_vac, n_int], bins=bins, label=["vacancies", "interstitials"])
    ax_counts.set_xlabel("defects per configuration (Wigner-Seitz)")
    ax_counts.set_ylabel("configurations")
    ax_counts.legend()
    sf, fam = np.asarray(stats["Sf_kB"]), np.asarray(stats["family"])
    names = sorted(set(fam.tolist()))
    if len(sf):
        ax_sf.hist([sf[fam == name] for name in names], bins=40, stacked=True, label=names)
        ax_sf.legend(fontsize="small")
    ax_sf.set_xlabel(r"formation entropy $S_f$ ($k_B$)")
    ax_sf.set_ylabel("configurations")
    from matplotlib.ticker import MaxNLocator

    for axis in (ax_counts.xaxis, ax_counts.yaxis, ax_sf.yaxis):
        axis.set_major_locator(MaxNLocator(integer=True))  # counts are whole numbers
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """Print the statistics of ``args.db``; exit code 0."""
    from ..data.store import connect, database_statistics, distinct_configurations, distinct_saddles

    db = connect(args.db, create=False)
    stats = database_statistics(db)
    if args.distinct:
        distinct = distinct_configurations(db, progress=not args.json).counts
        saddles = distinct_saddles(db).counts
        for name, entry in stats["families"].items():
            entry["n_distinct"] = distinct.get(name, {}).get("distinct")
            entry["n_distinct_saddles"] = saddles.get(name, {}).get("distinct", 0)
        stats["n_distinct_saddles"] = sum(entry["distinct"] for entry in saddles.values())
    if args.plot:
        _plot(stats, args.plot)
    if args.json:
        summary = {k: v for k, v in stats.items() if k not in ("Sf_kB", "family", "n_vac", "n_int")}
        print(json.dumps(summary, indent=2))
        return 0
    saddles = f", {stats['n_saddles']} saddles (transition states" if stats["n_saddles"] else ""
    if saddles:
        distinct_saddle_count = stats.get("n_distinct_saddles")
        saddles += ")" if distinct_saddle_count is None else f", {distinct_saddle_count} distinct)"
    print(f"{args.db}: {stats['n_rows']} rows, {stats['n_minima']} minima, "
          f"{stats['n_non_minima']} non-minima (stored without entropies){saddles}")
    distinct_header = f"{'distinct':>9}{'saddles':>9}" if args.distinct else ""
    print(f"{'family':<10}{'rows':>7}{'minima':>8}{distinct_header}{'Sf min':>9}{'Sf max':>9}"
          f"{'Sf mean':>9}{'max V':>7}{'max I':>7}")
    for name, entry in stats["families"].items():
        distinct_cell = (f"{entry.get('n_distinct') or '-':>9}{entry.get('n_distinct_saddles') or '-':>9}"
                         if args.distinct else "")
        print(f"{name:<10}{entry['count']:>7}{entry['n_minima']:>8}{distinct_cell}"
              f"{_fmt(entry['Sf_min_kB']):>9}{_fmt(entry['Sf_max_kB']):>9}"
              f"{_fmt(entry['Sf_mean_kB']):>9}{entry['n_vac_max']:>7}{entry['n_int_max']:>7}")
    print(f"\n{'family':<10}{'n_cells':>8}{'strain':>9}{'rows':>7}")
    for cell in stats["cells"]:
        print(f"{cell['family']:<10}{cell['n_cells']:>8}{cell['strain']:>+9.4f}{cell['count']:>7}")
    if stats["Sf_range_kB"] is not None:
        low, high = stats["Sf_range_kB"]
        print(f"\nS_f range over defect rows: {low:.2f} .. {high:.2f} k_B")
    if stats["n_jobs_timed"]:
        print(f"{stats['core_hours']:.2f} core-hours in the {stats['n_jobs_timed']} jobs that "
              "recorded their time")
    if args.plot:
        print(f"histograms written to {args.plot}")
    return 0
