"""The command line: ``homefire <command>``; with no command, the desktop app.

Each command lives in ``app/commands/<name>.py`` with ``register(subparsers)``; the module sets
``func`` on its parser. Errors the core raises on purpose become one line on stderr and exit 1;
anything else too, unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType

from app import __version__
from app.commands import fit, hw, ls, pull, rm, search, serve, token, usage, worker
from app.core.errors import AppError

# Commands register themselves in this order in `homefire --help`.
COMMAND_MODULES: tuple[ModuleType, ...] = (
    serve,
    worker,
    hw,
    fit,
    search,
    pull,
    ls,
    rm,
    token,
    usage,
)

CommandFunc = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homefire",
        description="Run open-weight language models on your own machine.",
    )
    parser.add_argument("--version", action="version", version=f"homefire {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _no_display(environ: Mapping[str, str]) -> bool:
    """On Linux, Qt aborts the process when it finds no display: say so in one line instead."""
    if not sys.platform.startswith("linux"):
        return False
    return not any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func: CommandFunc | None = getattr(args, "func", None)
    if func is None:
        return _run_desktop(args)
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except AppError as exc:
        if args.debug:
            raise
        print(f"homefire: {exc.user_message}", file=sys.stderr)  # noqa: T201
        return 1
    except Exception as exc:
        if args.debug:
            raise
        print(f"homefire: unexpected error: {exc} (run with --debug for details)", file=sys.stderr)  # noqa: T201
        return 1


def _run_desktop(args: argparse.Namespace) -> int:
    if _no_display(os.environ):
        print(  # noqa: T201
            "homefire: no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset); "
            "run `homefire serve` for the headless server",
            file=sys.stderr,
        )
        return 1
    try:
        from app.gui.main import run_desktop  # Qt loads only when the window is wanted
    except ImportError as exc:
        if args.debug:
            raise
        # A broken Qt install is the user's to fix; starting something else would hide it.
        print(  # noqa: T201
            f"homefire: the desktop app cannot start, Qt (PySide6) does not import: {exc}; "
            "run `homefire serve` for the headless server",
            file=sys.stderr,
        )
        return 1
    return run_desktop(args)
