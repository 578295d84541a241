"""Planning profiles by name: the built-in ones plus the user's own, stored as JSON in config_dir.

``homefire fit --profile NAME`` and the GUI look profiles up here. Names match case- and
punctuation-insensitively ("mac studio m3 ultra 512gb" finds "Mac Studio M3 Ultra 512GB").
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.core.errors import ConfigError, UnknownProfile
from app.core.hardware.builtin_profiles import builtin_profiles
from app.core.hardware.profile import HardwareProfile
from app.core.hardware.profile_json import SCHEMA_VERSION, profile_from_dict, profile_to_dict
from app.core.storage.atomic import write_atomic
from app.core.storage.paths import AppPaths

log = logging.getLogger(__name__)

USER_PROFILES_FILE = "hardware-profiles.json"


def profile_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower().replace("×", "x"))


def user_profiles_path(paths: AppPaths) -> Path:
    return paths.config_dir / USER_PROFILES_FILE


def _read_user_file(path: Path) -> list[Any]:
    """The stored profile objects; raises ConfigError when the file exists but is unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the hardware profiles file {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), list):
        raise ConfigError(f"the hardware profiles file {path} has no 'profiles' list")
    profiles: list[Any] = data["profiles"]
    return profiles


def user_profiles(paths: AppPaths) -> tuple[HardwareProfile, ...]:
    """The user's profiles; a broken file is logged and skipped so built-ins keep working."""
    path = user_profiles_path(paths)
    try:
        stored = _read_user_file(path)
    except ConfigError as exc:
        log.warning("%s; using the built-in profiles only", exc.user_message)
        return ()
    profiles = []
    for index, item in enumerate(stored):
        try:
            profiles.append(profile_from_dict(item, f"{path.name}: profiles[{index}]"))
        except ConfigError as exc:
            log.warning("skipping a user profile: %s", exc.user_message)
    return tuple(replace(profile, source="user") for profile in profiles)


def list_profiles(paths: AppPaths) -> tuple[HardwareProfile, ...]:
    return builtin_profiles() + user_profiles(paths)


def get_profile(name: str, paths: AppPaths) -> HardwareProfile:
    profiles = list_profiles(paths)
    wanted = profile_key(name)
    for profile in profiles:
        if profile_key(profile.name) == wanted:
            return profile
    raise UnknownProfile(name, [profile.name for profile in profiles])


_COUNT_RE = re.compile(r"^\s*(\d{1,3})\s*[x×]\s*(\S.*)$", re.IGNORECASE)
MAX_MACHINES = 15  # llama.cpp splits over at most 16 devices: the main machine and 15 more


def get_profiles(spec: str, paths: AppPaths) -> list[HardwareProfile]:
    """The machines ``spec`` names: a profile ("Mac Studio M3 Ultra 256GB") or N of one
    ("2x Mac Studio M3 Ultra 256GB", "3 × RTX 4090 24GB + 64GB RAM"). A name that itself starts
    with a count ("2x RTX 3090 + 128GB RAM") is one machine."""
    try:
        return [get_profile(spec, paths)]
    except UnknownProfile:
        counted = _COUNT_RE.match(spec)
        if counted is None:
            raise
    count = int(counted.group(1))
    if not 1 <= count <= MAX_MACHINES:
        raise ConfigError(f"{spec!r}: plan for 1 to {MAX_MACHINES} machines of one profile")
    return [get_profile(counted.group(2), paths)] * count


def _write_user_file(path: Path, profiles: list[HardwareProfile]) -> None:
    document = {
        "schema": SCHEMA_VERSION,
        "profiles": [profile_to_dict(profile) for profile in profiles],
    }
    write_atomic(path, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def save_user_profile(profile: HardwareProfile, paths: AppPaths) -> HardwareProfile:
    """Store (or replace) a user profile; built-in names are reserved."""
    if not profile.name.strip():
        raise ConfigError("a hardware profile needs a name")
    key = profile_key(profile.name)
    if any(profile_key(builtin.name) == key for builtin in builtin_profiles()):
        raise ConfigError(f"{profile.name!r} is a built-in profile name; choose another name")
    path = user_profiles_path(paths)
    _read_user_file(path)  # refuse to overwrite a file the user may want to repair
    kept = [existing for existing in user_profiles(paths) if profile_key(existing.name) != key]
    stored = replace(profile, source="user")
    _write_user_file(path, [*kept, stored])
    return stored


def remove_user_profile(name: str, paths: AppPaths) -> None:
    key = profile_key(name)
    if any(profile_key(builtin.name) == key for builtin in builtin_profiles()):
        raise ConfigError(f"{name!r} is built in and cannot be removed")
    path = user_profiles_path(paths)
    _read_user_file(path)
    current = list(user_profiles(paths))
    kept = [profile for profile in current if profile_key(profile.name) != key]
    if len(kept) == len(current):
        raise UnknownProfile(name, [profile.name for profile in current])
    _write_user_file(path, kept)
