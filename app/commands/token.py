"""``homefire token``: the Hugging Face token for gated models, kept in the OS keyring."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from app.core.catalog.hub import hf_saved_token
from app.core.errors import ConfigError
from app.core.storage.secrets import delete_secret, read_secret, save_secret


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "token",
        help="save, clear or check the Hugging Face token used for gated models",
        description="Homefire uses HF_TOKEN, else huggingface_hub's saved login, else the token "
        "saved here (in the OS keyring, never in a file). The token itself is never printed.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--set", action="store_true", help="save a token (read from stdin or a prompt)"
    )
    action.add_argument("--clear", action="store_true", help="forget the saved token")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.set:
        token = _read_token()
        if not token.startswith("hf_"):
            raise ConfigError("that does not look like a Hugging Face token (they start with hf_)")
        save_secret("huggingface-token", token)
        print("saved the Hugging Face token in the OS keyring")  # noqa: T201
    elif args.clear:
        gone = delete_secret("huggingface-token")
        print("forgot the saved token" if gone else "no token was saved")  # noqa: T201
    else:
        print(f"token in use: {_source()}")  # noqa: T201
    return 0


def _read_token() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Hugging Face token: ").strip()
    return sys.stdin.readline().strip()


def _source() -> str:
    if os.environ.get("HF_TOKEN", "").strip():
        return "HF_TOKEN from the environment"
    if hf_saved_token():
        return "huggingface_hub's saved login (hf auth login)"
    if read_secret("huggingface-token"):
        return "saved by Homefire in the OS keyring"
    return "none (public models only; gated ones need a token)"
