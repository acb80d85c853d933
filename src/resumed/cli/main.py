"""The ``resumectl`` entry point: argument parsing and dispatch.

``inspect`` works offline; ``list``, ``show``, ``discarded`` and ``rescan`` go
to :mod:`resumed.cli.remote`, imported only when used so that ``inspect``
never loads the D-Bus libraries.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from resumed.providers.checksum import ERA_DESCRIPTIONS
from resumed.session.resume import KNOWN_FLAGS


def _eras_epilog() -> str:
    width = max(len(name) for name in ERA_DESCRIPTIONS)
    lines = ["checksum eras (reported in checksum_rules):"]
    lines += [f"  {name:<{width}}  {text}" for name, text in ERA_DESCRIPTIONS.items()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The ``resumectl`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    remote = argparse.ArgumentParser(add_help=False, parents=[common])
    remote.add_argument(
        "--address", default=argparse.SUPPRESS, help="D-Bus address (default: the system bus)"
    )
    parser = argparse.ArgumentParser(
        prog="resumectl",
        description="Query resumed, or inspect a session offline.",
        epilog=_eras_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--address", help="D-Bus address (default: the system bus)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    inspect = commands.add_parser(
        "inspect",
        parents=[common],
        help="resume a session offline, without the daemon",
        description="Resume a session file or <id>.session directory offline "
        "(never writing to it) and show the result.",
        epilog=_eras_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect.add_argument(
        "--provider-dir",
        action="append",
        metavar="DIR",
        help="provider directory (repeatable; default: $PROVIDERPATH or the system dirs)",
    )
    inspect.add_argument(
        "--flag", action="append", choices=KNOWN_FLAGS, help="PlainBox resume flag (repeatable)"
    )
    inspect.add_argument("path", metavar="PATH", help="session file or <id>.session directory")
    commands.add_parser("list", parents=[remote], help="list the published sessions")
    show = commands.add_parser("show", parents=[remote], help="show one session's properties")
    show.add_argument("id", metavar="ID", help="session id")
    commands.add_parser("discarded", parents=[remote], help="list the discarded sessions")
    commands.add_parser("rescan", parents=[remote], help="ask the daemon to rescan (root)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run resumectl; return the exit status (2 for usage errors)."""
    logging.basicConfig(level=logging.ERROR, format="resumectl: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "inspect":
        from resumed.cli import inspect

        return inspect.run(args)
    from resumed.cli import remote

    return remote.run(args)
