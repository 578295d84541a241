"""The closed loop: after every real load, predicted vs measured memory (and speed) on this machine.

Homefire's estimates come from formulas; this store keeps what really happened here, so later
estimates apply the learned correction and ``homefire fit`` can show "measured here" beside them.
The correction is the median ratio measured ÷ predicted over the recent loads, so one odd load
(another program freeing memory mid-load) does not swing it.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.core.load_options import KvCacheType
from app.core.storage.db import Migration, connect, migrate, transaction

COMPONENT = "fit_calibration"
RECENT_LOADS = 20
MIN_PLAUSIBLE, MAX_PLAUSIBLE = 0.5, 2.0  # ratios outside this are measurement accidents

_MIGRATIONS = (
    Migration(
        1,
        (
            """CREATE TABLE fit_measurements (
                id INTEGER PRIMARY KEY,
                measured_at TEXT NOT NULL,
                model_path TEXT NOT NULL,
                model_name TEXT NOT NULL,
                n_ctx INTEGER NOT NULL,
                kv_type TEXT NOT NULL,
                flash_attn INTEGER NOT NULL,
                n_gpu_layers INTEGER NOT NULL,
                predicted_ram_bytes INTEGER NOT NULL,
                measured_ram_bytes INTEGER NOT NULL,
                predicted_tokens_per_s REAL,
                measured_tokens_per_s REAL
            )""",
            "CREATE INDEX fit_measurements_by_path ON fit_measurements (model_path, id)",
        ),
    ),
)


@dataclass(frozen=True)
class LoadMeasurement:
    id: int
    measured_at: datetime
    model_path: str
    model_name: str
    n_ctx: int
    kv_cache_type: str  # stored in the kv_type column
    flash_attn: bool
    n_gpu_layers: int
    predicted_ram_bytes: int  # the formula's estimate, before any correction
    measured_ram_bytes: int  # resident-memory growth over the load
    predicted_tokens_per_s: float | None
    measured_tokens_per_s: float | None

    @property
    def ram_error(self) -> float:
        """(measured − predicted) ÷ measured: +5% means the estimate was 5% low."""
        return (self.measured_ram_bytes - self.predicted_ram_bytes) / self.measured_ram_bytes


@dataclass(frozen=True)
class Correction:
    factor: float
    loads: int

    @property
    def basis(self) -> str:
        return f"{self.loads} load{'s' if self.loads != 1 else ''} measured here"


class FitCalibration:
    def __init__(self, db_path: Path) -> None:
        self._conn = connect(db_path)
        self._lock = threading.Lock()
        migrate(self._conn, db_path, COMPONENT, _MIGRATIONS)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record_load(
        self,
        *,
        model_path: Path,
        model_name: str,
        n_ctx: int,
        kv_cache_type: KvCacheType,
        flash_attn: bool,
        n_gpu_layers: int,
        predicted_ram_bytes: int,
        measured_ram_bytes: int,
    ) -> int:
        with self._lock, transaction(self._conn):
            cursor = self._conn.execute(
                "INSERT INTO fit_measurements (measured_at, model_path, model_name, n_ctx, "
                "kv_type, flash_attn, n_gpu_layers, predicted_ram_bytes, measured_ram_bytes) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC).isoformat(),
                    str(model_path),
                    model_name,
                    n_ctx,
                    kv_cache_type,
                    int(flash_attn),
                    n_gpu_layers,
                    predicted_ram_bytes,
                    measured_ram_bytes,
                ),
            )
            return int(cursor.lastrowid or 0)

    def record_speed(
        self, load_id: int, measured_tokens_per_s: float, predicted_tokens_per_s: float | None
    ) -> None:
        """Keep the fastest decode seen for a load (short replies under-report the rate)."""
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "UPDATE fit_measurements SET measured_tokens_per_s = "
                "max(coalesce(measured_tokens_per_s, 0), ?), predicted_tokens_per_s = ? "
                "WHERE id = ?",
                (measured_tokens_per_s, predicted_tokens_per_s, load_id),
            )

    def measurements(
        self, model_path: Path | None = None, limit: int = 50
    ) -> list[LoadMeasurement]:
        query = "SELECT * FROM fit_measurements"
        args: tuple[object, ...] = ()
        if model_path is not None:
            query += " WHERE model_path = ?"
            args = (str(model_path),)
        query += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._conn.execute(query, (*args, limit)).fetchall()
        return [
            LoadMeasurement(
                id=row[0],
                measured_at=datetime.fromisoformat(row[1]),
                model_path=row[2],
                model_name=row[3],
                n_ctx=row[4],
                kv_cache_type=row[5],
                flash_attn=bool(row[6]),
                n_gpu_layers=row[7],
                predicted_ram_bytes=row[8],
                measured_ram_bytes=row[9],
                predicted_tokens_per_s=row[10],
                measured_tokens_per_s=row[11],
            )
            for row in rows
        ]

    def correction(self) -> Correction | None:
        """The factor to multiply estimates by on this machine, or None before any good load."""
        ratios = [
            m.measured_ram_bytes / m.predicted_ram_bytes
            for m in self.measurements(limit=RECENT_LOADS)
            if m.predicted_ram_bytes > 0
        ]
        plausible = [r for r in ratios if MIN_PLAUSIBLE <= r <= MAX_PLAUSIBLE]
        if not plausible:
            return None
        return Correction(factor=statistics.median(plausible), loads=len(plausible))
