"""Typed, versioned settings in one JSON file, written atomically, only non-defaults saved.

A corrupt or unreadable file never stops Homefire: it logs a warning, keeps the bad file aside
as ``settings.json.corrupt`` for the user, and runs on defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.storage.json_store import VersionedJsonStore

SCHEMA_VERSION = 1


class ServerLimits(BaseModel):
    """What one client can hold or ask for; each limit is in the README's Limits table."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    # Beyond this many open connections new requests get 503 at once, so a flood of sockets
    # cannot exhaust file descriptors or memory; IDE plugins and the app use a handful.
    max_connections: int = Field(default=64, ge=1, le=10_000)
    # An idle keep-alive connection is closed after this long (uvicorn's own default).
    keep_alive_s: int = Field(default=5, ge=1, le=3600)
    # The request line and headers must arrive within this long and fit in this many bytes.
    header_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=2**20)
    # The whole body must arrive within this long of its headers (20 MiB at 1 MB/s still fits).
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    # OpenAI's own per-request caps, so a client written for OpenAI never meets a lower one.
    max_embedding_inputs: int = Field(default=2048, ge=1, le=100_000)
    max_embedding_tokens: int = Field(default=300_000, ge=1, le=100_000_000)


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    cors_origins: list[str] = Field(default_factory=list)
    # Host names besides localhost and loopback that clients may use (e.g. this machine's LAN name).
    allowed_hosts: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=20 * 2**20, ge=1024)
    limits: ServerLimits = Field(default_factory=ServerLimits)


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    max_pending: int = Field(default=16, ge=1, le=1024)
    # Sequence slots decoded together (requests served at once); None: chosen from the memory
    # the fit estimate leaves for their KV cache.
    parallel: int | None = Field(default=None, ge=1, le=64)
    # A request naming a library model that is not loaded loads it (Ollama and LM Studio do).
    load_on_request: bool = True
    # Models loaded at once; None: as many as memory holds (Ollama's OLLAMA_MAX_LOADED_MODELS).
    max_loaded_models: int | None = Field(default=None, ge=1, le=64)
    # Seconds an idle model loaded on request stays loaded (Ollama's 5 minutes); < 0: forever.
    keep_alive_s: float = 300.0
    # RAM left to everything else when deciding whether a model fits.
    memory_margin_mb: int = Field(default=1024, ge=0, le=1024 * 1024)
    # What all loaded models may take together, in MiB; None: the RAM available.
    memory_budget_mb: int | None = Field(default=None, ge=1)
    # Machines running `homefire worker` ("host:port") that every load uses unless told otherwise.
    workers: list[str] = Field(default_factory=list, max_length=16)
    # The longest any one wait on a worker may take (a decode step, a token count); a model's
    # load may take this plus its size at 50 MB/s, for a slow link.
    worker_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    # The network between this machine and its workers, for cluster speed estimates (10 GbE).
    worker_link_gbps: float = Field(default=10.0, gt=0, le=10_000)


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
    return raw


class SettingsStore(VersionedJsonStore[Settings]):
    def __init__(self, path: Path) -> None:
        super().__init__(path, Settings, SCHEMA_VERSION, "settings", _migrate)
