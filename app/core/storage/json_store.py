"""A typed, versioned JSON file: written atomically with only non-default values; a corrupt or
unreadable file means a logged warning and defaults, never a crash (the bad file is kept aside
as ``<name>.corrupt`` for the user). Settings and usage preferences are both stored this way."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from app.core.storage.atomic import write_atomic

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class VersionedJsonStore(Generic[M]):
    def __init__(
        self,
        path: Path,
        model: type[M],
        schema_version: int,
        what: str,
        migrate: Callable[[dict[str, Any]], dict[str, Any]] = lambda raw: raw,
    ) -> None:
        self._path = path
        self._model = model
        self._version = schema_version
        self._what = what  # "settings", "usage preferences": for the log lines
        self._migrate = migrate

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> M:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self._model()
        except OSError as exc:
            log.warning("cannot read %s (%s); using default %s", self._path, exc, self._what)
            return self._model()
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError("the top level is not an object")
            version = raw.get("schema_version", self._version)
            if not isinstance(version, int) or version > self._version:
                raise ValueError(f"schema_version {version!r} is newer than this Homefire knows")
            raw = self._migrate(raw)
            raw["schema_version"] = self._version
            return self._model.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            self._set_aside()
            log.warning("%s file %s is corrupt (%s); using defaults", self._what, self._path, exc)
            return self._model()

    def save_data(self, data: dict[str, Any]) -> None:
        """Write ``data`` (already reduced to non-defaults) with the schema version."""
        data["schema_version"] = self._version
        write_atomic(self._path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

    def save(self, value: M) -> None:
        self.save_data(value.model_dump(mode="json", exclude_defaults=True))

    def _set_aside(self) -> None:
        try:
            os.replace(self._path, self._path.with_name(self._path.name + ".corrupt"))
        except OSError as exc:
            log.warning("could not set the corrupt %s file aside: %s", self._what, exc)
