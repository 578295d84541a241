"""``homefire hw``: what this machine has, or a planning profile; ``--json`` for scripts.

homefire hw [--json]                   this machine (detected now)
homefire hw --profile NAME [--json]    a built-in or saved planning profile
homefire hw --profiles [--json]        every planning profile
homefire hw --save-profile NAME        save this machine as a planning profile
homefire hw --import-profile FILE      add a profile from a JSON file (the --json format)
homefire hw --remove-profile NAME      remove a saved profile
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.core.errors import ConfigError
from app.core.hardware.description import as_text, summary
from app.core.hardware.detect import detect
from app.core.hardware.profile import HardwareProfile
from app.core.hardware.profile_json import SCHEMA_VERSION, profile_from_dict, profile_to_dict
from app.core.hardware.profiles import (
    get_profile,
    list_profiles,
    remove_user_profile,
    save_user_profile,
)
from app.core.storage.paths import AppPaths


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hw",
        help="show what this machine has (CPU, RAM, GPUs, usable backends)",
        description="Show this machine's hardware as Homefire sees it, or a planning profile.",
    )
    parser.add_argument("--json", action="store_true", help="print stable JSON (schema 1)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--profile", metavar="NAME", help="show a planning profile instead")
    which.add_argument("--profiles", action="store_true", help="list the planning profiles")
    which.add_argument(
        "--save-profile", metavar="NAME", help="save this machine as a planning profile"
    )
    which.add_argument(
        "--import-profile", metavar="FILE", help="add a planning profile from a JSON file"
    )
    which.add_argument("--remove-profile", metavar="NAME", help="remove a saved profile")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = AppPaths.from_env()
    if args.profiles:
        profiles = list_profiles(paths)
        if args.json:
            _emit_json(
                {"schema": SCHEMA_VERSION, "profiles": [profile_to_dict(p) for p in profiles]}
            )
        else:
            _emit("\n".join(summary(profile) for profile in profiles))
        return 0
    if args.save_profile is not None:
        saved = save_user_profile(replace(detect(paths=paths), name=args.save_profile), paths)
        _emit(f"saved this machine as the profile {saved.name!r}")
        return 0
    if args.import_profile is not None:
        saved = save_user_profile(_read_profile_file(Path(args.import_profile)), paths)
        _emit(f"added the profile {saved.name!r}")
        return 0
    if args.remove_profile is not None:
        remove_user_profile(args.remove_profile, paths)
        _emit(f"removed the profile {args.remove_profile!r}")
        return 0
    profile = get_profile(args.profile, paths) if args.profile else detect(paths=paths)
    if args.json:
        _emit_json(profile_to_dict(profile))
    else:
        _emit(as_text(profile, None if args.profile else paths.models_dir))
    return 0


def _emit(text: str) -> None:
    sys.stdout.write(text + "\n")


def _emit_json(data: dict[str, Any]) -> None:
    _emit(json.dumps(data, indent=2, ensure_ascii=False))


def _read_profile_file(path: Path) -> HardwareProfile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the profile file {path}: {exc}") from exc
    return profile_from_dict(data, path.name)
