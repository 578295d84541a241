"""The ledger as CSV: one row per generation, for a spreadsheet (the Usage page's Export)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from app.core.errors import StorageError
from app.core.usage.ledger import UsageLedger

CSV_HEADER = (
    "started_at", "ended_at", "source", "client", "model", "prompt_tokens",
    "cached_prompt_tokens", "completion_tokens", "prompt_seconds", "decode_seconds",
    "energy_joules", "finish_reason",
)  # fmt: skip


def export_csv(ledger: UsageLedger, path: Path, since: datetime | None) -> int:
    """Every generation since ``since`` (all when None) as one CSV row; returns the row count."""
    records = ledger.records(since=since)
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_HEADER)
            for r in records:
                writer.writerow((
                    r.started_at.isoformat(), r.ended_at.isoformat() if r.ended_at else "",
                    r.source, r.client, r.model, r.tokens.prompt, r.tokens.cached_prompt,
                    r.tokens.completion, r.prompt_seconds or "", r.decode_seconds or "",
                    r.energy_joules if r.energy_joules is not None else "", r.finish_reason or "",
                ))  # fmt: skip
    except OSError as exc:
        raise StorageError(f"cannot write the usage export {path}: {exc.strerror or exc}") from exc
    return len(records)
