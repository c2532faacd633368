"""Command line: ``python -m vqrec_core <command> --help``.

Every command prints plain text; a problem with the input prints one clear message on stderr and exits with
status 2 (never a traceback). Subcommands live next to the code they drive: each module exposes
``register_cli(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import VQRecError

# Modules that add subcommands, in the order they appear in --help. A module that is not present yet is skipped.
CLI_MODULES = ("commands", "codes", "recommend", "experiment", "analysis")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vqrec_core",
        description="VQ-Rec Studio core: validate domains, encode item text, build discrete codes, train and "
                    "evaluate transferable sequential recommenders, and analyse code space vs text space.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in CLI_MODULES:
        try:
            mod = importlib.import_module(f"vqrec_core.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"vqrec_core.{name}":
                continue
            raise
        if hasattr(mod, "register_cli"):
            mod.register_cli(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VQRecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
