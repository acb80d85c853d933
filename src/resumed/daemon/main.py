"""``resumed``: the command line of the daemon."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from resumed import __version__

logger = logging.getLogger(__name__)

LOG_LEVELS = ("debug", "info", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``resumed``."""
    parser = argparse.ArgumentParser(
        prog="resumed",
        description="Session resume daemon: finds dormant PlainBox/Checkbox sessions, resumes "
                    "them against the installed providers, settles the job a reboot "
                    "interrupted, and publishes them on D-Bus as org.resumed.Resume1.",
        epilog="Options override the configuration file, which overrides the defaults. "
               "Signals: SIGHUP reloads the configuration and providers and rescans; "
               "SIGTERM stops. Logs go to stderr.")
    parser.add_argument("--version", action="version", version=f"resumed {__version__}")
    parser.add_argument("--config", metavar="FILE", type=Path,
                        help="configuration file (default: /etc/resumed/resumed.toml if it "
                             "exists)")
    parser.add_argument("--session-root", metavar="DIR", type=Path, action="append",
                        dest="session_roots",
                        help="a directory holding <id>.session/ directories (repeatable; "
                             "replaces the configured roots)")
    parser.add_argument("--provider-dir", metavar="DIR", type=Path, action="append",
                        dest="provider_dirs",
                        help="a directory holding *.provider files (repeatable; replaces "
                             "$PROVIDERPATH and the default search)")
    parser.add_argument("--state-dir", metavar="DIR", type=Path,
                        help="where settle records and backups go (default: "
                             "$STATE_DIRECTORY, else /var/lib/resumed)")
    parser.add_argument("--bus", metavar="system|session|ADDRESS", default="system",
                        help="the bus to publish on (default: system)")
    parser.add_argument("--log-level", metavar="LEVEL", choices=LOG_LEVELS, default="info",
                        type=str.lower, help="one of %(choices)s (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon; return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    # The watchdog library logs every inotify event at debug level.
    logging.getLogger("watchdog").setLevel(max(logging.INFO, logging.getLogger().level))
    from resumed.config import DEFAULT_CONFIG_PATH
    from resumed.daemon.app import Daemon, Options, StartupError

    config_path = args.config
    if config_path is None and DEFAULT_CONFIG_PATH.exists():
        config_path = DEFAULT_CONFIG_PATH
    overrides = {"session_roots": args.session_roots, "provider_dirs": args.provider_dirs,
                 "state_dir": args.state_dir}
    try:
        daemon = Daemon(Options(config_path, overrides, args.bus))
        return daemon.run()
    except StartupError as exc:
        logger.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
