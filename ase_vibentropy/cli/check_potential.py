"""``vibentropy check-potential``: is a potential's Hessian fit for harmonic entropies?"""

from __future__ import annotations

import argparse
import json

DESCRIPTION = """Check the Hessians of a potential on its perfect lattice, in seconds: the entropy
per atom against tiny strains must be a smooth function (noise in the second derivatives, as
from splines through rounded tables, makes formation entropies grow with the cell), finite-
difference Hessians must not depend on the step, the lattice must have exactly 3 zero modes and
no unstable one. SPEC is a built-in name, an EAM file (eam/alloy, eam/fs), a TOML or JSON file
with a potential table, or that table as JSON. Exit code 0 on PASS, 1 on FAIL."""

EPILOG = """examples:
  vibentropy check-potential fe-mendelev2003
  vibentropy check-potential Cu_mishin1.eam.alloy --plot check.png --json
  vibentropy check-potential '{"factory": "ase.calculators.emt:EMT", "element": "Cu"}'"""


def register(subparsers) -> None:
    """Add the ``check-potential`` sub-command."""
    parser = subparsers.add_parser(
        "check-potential", help="is a potential's Hessian smooth enough for harmonic entropies?",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", metavar="SPEC", help="potential name, EAM file, spec file or JSON")
    parser.add_argument("--lattice", choices=("bcc", "fcc"), help="crystal (default: the potential's)")
    parser.add_argument("--a0", type=float, metavar="A", help="lattice constant, Å (default: the potential's)")
    parser.add_argument("--plot", metavar="PNG", help="write the screen and step-sensitivity panels")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the check; 0 on PASS, 1 on FAIL."""
    from ..errors import InvalidOptionError
    from ..harmonic.screen import check_potential
    from ..potentials import get_potential

    if args.a0 is not None and not args.a0 > 0:
        raise InvalidOptionError(f"--a0 must be a positive lattice constant in Å, got {args.a0}")
    potential = get_potential(args.spec)
    check = check_potential(potential, lattice=args.lattice, a0=args.a0)
    if args.plot:
        from ..plotting import potential_check_plot

        potential_check_plot(check, args.plot)
    if args.json:
        print(json.dumps(check.as_dict(), indent=2))
    else:
        print(check.verdict())
        print(f"  strain screen: residual {check.strain.max_residual_kB:.2e} k_B/atom "
              f"(tolerance {check.strain.tolerance_kB:.0e}), ds/dε = {check.strain.slope_kB:.3f} k_B/atom")
        steps = ", ".join(f"{h:g} Å: {s - check.fd_reference_kB:+.1e}"
                          for h, s in zip(check.fd_steps_A, check.fd_entropy_kB))
        print(f"  finite-difference steps (entropy - {check.hessian_method}, k_B/atom): {steps}; "
              f"largest safe step {check.safe_fd_step_A if check.safe_fd_step_A is not None else 'none'}")
        print(f"  zero modes {check.n_zero_modes} (3 expected), lowest ω² {check.lowest_omega2:.4g} "
              f"eV/(Å² amu); {check.seconds:.1f} s")
    return 0 if check.passed else 1
