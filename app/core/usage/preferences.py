"""The user's usage preferences: baselines, electricity price, hardware cost, own prices.

They live in ``usage.json`` beside the main settings, apart from the shipped price table, so
an update of the table never touches them. Like the main settings: written atomically, only
non-defaults saved, and a corrupt file means a warning and defaults, never a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.core.storage.json_store import VersionedJsonStore
from app.core.storage.paths import AppPaths
from app.core.usage.pricing import (
    Money,
    Price,
    PriceId,
    PriceOverride,
    PriceTable,
    load_shipped,
    merge_user_prices,
    shipped_pricing_path,
)

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

    def price_table(self, shipped: PriceTable | None = None) -> PriceTable:
        """The shipped table (read from this installation unless given) with the user's prices.

        Raises ConfigError when the installation lacks a readable table.
        """
        if shipped is None:
            shipped = load_shipped(shipped_pricing_path())
        return merge_user_prices(shipped, self.prices)

    def baselines_in(self, table: PriceTable, chosen: Sequence[str] = ()) -> list[Price]:
        """The APIs to price against: ``chosen``, else the user's baselines, else the table's."""
        return table.baselines(chosen or self.baselines)


class UsagePreferencesStore(VersionedJsonStore[UsagePreferences]):
    def __init__(self, path: Path) -> None:
        super().__init__(path, UsagePreferences, SCHEMA_VERSION, "usage preferences")

    @classmethod
    def at(cls, paths: AppPaths) -> UsagePreferencesStore:
        return cls(paths.config_dir / PREFERENCES_FILE)

    def save(self, value: UsagePreferences) -> None:
        data = value.model_dump(mode="json", exclude_defaults=True)
        # Overrides keep only the fields the user set.
        data["prices"] = {
            price_id: override.model_dump(mode="json", exclude_none=True)
            for price_id, override in value.prices.items()
        }
        if not data["prices"]:
            del data["prices"]
        self.save_data(data)
