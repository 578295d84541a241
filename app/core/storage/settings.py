"""Typed, versioned settings in one JSON file, written atomically, only non-defaults saved.

A corrupt or unreadable file never stops Homefire: it logs a warning, keeps the bad file aside
as ``settings.json.corrupt`` for the user, and runs on defaults.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.core.storage.atomic import write_atomic

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    cors_origins: list[str] = Field(default_factory=list)


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    max_pending: int = Field(default=16, ge=1, le=1024)


class UsageSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    # Off: no ledger rows are written (the savings pages then have nothing new to count).
    record: bool = True


class Settings(BaseModel):
    """Everything the user can set. Add fields with defaults; bump SCHEMA_VERSION on renames."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    schema_version: int = SCHEMA_VERSION
    default_model: str | None = None
    model_folders: list[str] = Field(default_factory=list)
    server: ServerSettings = Field(default_factory=ServerSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    usage: UsageSettings = Field(default_factory=UsageSettings)


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older file up to SCHEMA_VERSION. Version 1 is the first; nothing to do yet."""
    raw["schema_version"] = SCHEMA_VERSION
    return raw


class SettingsStore:
    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> Settings:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Settings()
        except OSError as exc:
            log.warning("cannot read %s (%s); using default settings", self._path, exc)
            return Settings()
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError("the top level is not an object")
            version = raw.get("schema_version", SCHEMA_VERSION)
            if not isinstance(version, int) or version > SCHEMA_VERSION:
                raise ValueError(f"schema_version {version!r} is newer than this Homefire knows")
            return Settings.model_validate(_migrate(raw))
        except (ValueError, ValidationError) as exc:
            self._set_aside()
            log.warning("settings file %s is corrupt (%s); using defaults", self._path, exc)
            return Settings()

    def save(self, settings: Settings) -> None:
        data = settings.model_dump(mode="json", exclude_defaults=True)
        data["schema_version"] = SCHEMA_VERSION
        write_atomic(self._path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

    def _set_aside(self) -> None:
        try:
            os.replace(self._path, self._path.with_name(self._path.name + ".corrupt"))
        except OSError as exc:
            log.warning("could not set the corrupt settings file aside: %s", exc)
