"""Reference API prices: the table Homefire ships, merged with the user's edits and entries.

Prices are Decimal dollars per million tokens. The shipped table (``resources/pricing.json``)
is replaced by updates; the user's edits live in their own file and are merged over it by id,
field by field, so an edited price survives an update and an untouched one follows it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.core.errors import ConfigError
from app.core.storage.resources import resources_dir

log = logging.getLogger(__name__)

PRICING_FILE = "pricing.json"
PriceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][\w.:-]*$")]
Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Origin = Literal["shipped", "edited", "user"]


class Price(BaseModel):
    """One reference API: dollars per million input, cached input and output tokens."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: PriceId
    name: str = Field(min_length=1)
    vendor: str = ""
    input: Money
    cached_input: Money
    output: Money
    as_of: date | None = None
    source: str = ""
    note: str = ""
    origin: Origin = "shipped"


class PriceOverride(BaseModel):
    """The user's edit of a shipped price, or (with name, input and output) a price of their own."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str | None = Field(default=None, min_length=1)
    vendor: str | None = None
    input: Money | None = None
    cached_input: Money | None = None
    output: Money | None = None
    as_of: date | None = None
    source: str | None = None
    note: str | None = None


class _ShippedTable(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_: int = Field(alias="schema")
    as_of: date
    currency: str
    note: str = ""
    default_baselines: list[PriceId]
    prices: list[Price]


@dataclass(frozen=True)
class PriceTable:
    as_of: date
    currency: str
    prices: Mapping[str, Price]
    default_baselines: tuple[str, ...]
    note: str = ""

    def get(self, price_id: str) -> Price:
        price = self.prices.get(price_id)
        if price is None:
            known = ", ".join(self.prices)
            raise ConfigError(f"no reference price called {price_id!r}; known: {known}")
        return price

    def baselines(self, ids: Sequence[str] = ()) -> list[Price]:
        """The chosen baselines in order, or the table's defaults when none are chosen."""
        chosen = list(dict.fromkeys(ids)) or [i for i in self.default_baselines if i in self.prices]
        return [self.get(i) for i in chosen]


def shipped_pricing_path() -> Path:
    path = resources_dir() / PRICING_FILE
    if not path.is_file():
        raise ConfigError(f"the shipped price table {path} is missing from this installation")
    return path


def load_shipped(path: Path) -> PriceTable:
    try:
        table = _ShippedTable.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise ConfigError(f"the price table {path} cannot be read: {exc}") from exc
    prices = {price.id: price for price in table.prices}
    return PriceTable(
        table.as_of, table.currency, prices, tuple(table.default_baselines), table.note
    )


def merge_user_prices(table: PriceTable, overrides: Mapping[str, PriceOverride]) -> PriceTable:
    """The shipped table with the user's edits applied by id; the user wins, field by field.

    A new id needs a name, an input and an output price (cached input defaults to the input
    price: no cache discount); an incomplete one is skipped with a warning, never fatal.
    """
    prices = dict(table.prices)
    for price_id, override in overrides.items():
        fields = override.model_dump(exclude_none=True)
        shipped = prices.get(price_id)
        try:
            if shipped is not None:
                prices[price_id] = Price.model_validate(
                    {**shipped.model_dump(), **fields, "origin": "edited"}
                )
            else:
                fields.setdefault("cached_input", fields.get("input"))
                prices[price_id] = Price.model_validate(
                    {**fields, "id": price_id, "origin": "user"}
                )
        except ValidationError as exc:
            log.warning("ignoring your price %r: %s", price_id, _first_error(exc))
    return PriceTable(table.as_of, table.currency, prices, table.default_baselines, table.note)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
