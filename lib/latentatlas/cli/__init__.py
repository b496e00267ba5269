"""The ``latentatlas`` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``; :data:`COMMANDS` lists them in ``--help`` order.

A user mistake (bad input, unwritable output, missing optional package, port in use) is
reported as one line and exit status 2; a traceback means a bug (``--debug`` shows it
for any error).
"""

from __future__ import annotations

import argparse
import importlib
import keyword
import sys

COMMANDS = ["featurize", "import", "fre", "concepts", "serve", "export", "reproduce"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentatlas",
        description=(
            "Compare what machine-learning models have learned: latent features of "
            "interatomic potentials, feature reconstruction errors (GFRE, GFRD, LFRE), "
            "progressive cumulants and concept knowledge graphs."
        ),
        epilog="Run 'latentatlas COMMAND --help' for the options of one command.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"latentatlas {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = name.replace("-", "_") + ("_" if keyword.iskeyword(name) else "")  # import -> import_
        importlib.import_module(f"{__name__}.{module}").register(sub)
    for command in sub.choices.values():  # also accepted after the command
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ._checks import user_error

    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except Exception as err:
        message = None if args.debug else user_error(err)
        if message is None:
            raise
        print(f"latentatlas {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"latentatlas {args.command}: interrupted; no result file was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
