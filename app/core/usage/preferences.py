"""The user's usage preferences: baselines, electricity price, hardware cost, own prices.

They live in ``usage.json`` beside the main settings, apart from the shipped price table, so
an update of the table never touches them. Like the main settings: written atomically, only
non-defaults saved, and a corrupt file means a warning and defaults, never a crash.
"""

from __future__ import annotations

import json
import logging
import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.core.storage.atomic import write_atomic
from app.core.storage.paths import AppPaths
from app.core.usage.pricing import Money, PriceId, PriceOverride, PriceTable, merge_user_prices

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
PREFERENCES_FILE = "usage.json"


class UsagePreferences(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    schema_version: int = SCHEMA_VERSION
    # Empty: the shipped table's default baselines.
    baselines: list[PriceId] = Field(default_factory=list)
    # Dollars per kWh, the currency of the price table. None: not set, so no net figure.
    electricity_price_per_kwh: Money | None = None
    hardware_cost: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] | None = None
    prices: dict[PriceId, PriceOverride] = Field(default_factory=dict)

    def price_table(self, shipped: PriceTable) -> PriceTable:
        return merge_user_prices(shipped, self.prices)


class UsagePreferencesStore:
    def __init__(self, path: Path) -> None:
        self._path = path

    @classmethod
    def at(cls, paths: AppPaths) -> UsagePreferencesStore:
        return cls(paths.config_dir / PREFERENCES_FILE)

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> UsagePreferences:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return UsagePreferences()
        except OSError as exc:
            log.warning("cannot read %s (%s); using default usage preferences", self._path, exc)
            return UsagePreferences()
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError("the top level is not an object")
            version = raw.get("schema_version", SCHEMA_VERSION)
            if not isinstance(version, int) or version > SCHEMA_VERSION:
                raise ValueError(f"schema_version {version!r} is newer than this Homefire knows")
            return UsagePreferences.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            self._set_aside()
            log.warning("usage preferences %s are corrupt (%s); using defaults", self._path, exc)
            return UsagePreferences()

    def save(self, preferences: UsagePreferences) -> None:
        data = preferences.model_dump(mode="json", exclude_defaults=True)
        data["prices"] = {
            price_id: override.model_dump(mode="json", exclude_none=True)
            for price_id, override in preferences.prices.items()
        }
        if not data["prices"]:
            del data["prices"]
        data["schema_version"] = SCHEMA_VERSION
        write_atomic(self._path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

    def _set_aside(self) -> None:
        try:
            os.replace(self._path, self._path.with_name(self._path.name + ".corrupt"))
        except OSError as exc:
            log.warning("could not set the corrupt usage preferences aside: %s", exc)
