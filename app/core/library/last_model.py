"""The model the desktop app loaded last, and how: the next start loads it again.

Kept in ``last_model.json`` beside the settings and written like them (typed, versioned,
atomic). A damaged file means a logged warning and the starter model, never a crash: the file
is set aside as ``last_model.json.corrupt``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from app.core.load_options import KvCacheType, LoadOptions
from app.core.storage.json_store import VersionedJsonStore
from app.core.storage.paths import AppPaths

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
LAST_MODEL_FILE = "last_model.json"
# What of a load is remembered: how the user chose to load it, not how this run happened to
# (threads and seed follow the settings and the defaults of the next start).
_CHOSEN = ("n_ctx", "n_gpu_layers", "flash_attn", "kv_cache_type", "moe_experts_on_cpu_layers")


class LastModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1)
    n_ctx: int = Field(ge=256)
    n_gpu_layers: int = Field(default=0, ge=-1)
    flash_attn: bool = False
    kv_cache_type: KvCacheType = "f16"
    moe_experts_on_cpu_layers: int = Field(default=0, ge=0)

    @classmethod
    def of(cls, name: str, options: LoadOptions) -> LastModel:
        return cls(name=name, **{field: getattr(options, field) for field in _CHOSEN})

    def options(self, model_path: Path) -> LoadOptions:
        return LoadOptions(model_path, **{field: getattr(self, field) for field in _CHOSEN})


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION
    model: LastModel | None = None


class LastModelStore(VersionedJsonStore[_Record]):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _Record, SCHEMA_VERSION, "last model")

    @classmethod
    def at(cls, paths: AppPaths) -> LastModelStore:
        return cls(paths.config_dir / LAST_MODEL_FILE)

    def recall(self) -> LastModel | None:
        return self.load().model

    def remember(self, last: LastModel) -> None:
        """Failing to write it costs only the next start's choice: a warning, not an error."""
        try:
            self.save(_Record(model=last))
        except OSError as exc:
            log.warning("cannot save the last model in %s: %s", self.path, exc)
