"""AppServices builds every stateful service, each once and only when asked, and closes them all."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.core.errors import Cancelled
from app.core.services import AppServices

Started = Callable[[str], list[str]]


@pytest.fixture
def started() -> Started:
    """The alive threads named ``prefix...`` this test started (others may still be ending)."""
    before = set(threading.enumerate())

    def named(prefix: str) -> list[str]:
        return [
            t.name
            for t in threading.enumerate()
            if t not in before and t.name.startswith(prefix) and t.is_alive()
        ]

    return named


def test_listing_the_library_starts_no_engine_and_opens_no_database(started: Started) -> None:
    with AppServices.create() as services:
        services.library.models()
        assert not started("engine")
        assert not started("download-")
        assert not services.paths.database_file.exists()


def test_a_part_asked_for_from_many_threads_is_built_once(started: Started) -> None:
    with AppServices.create() as services, ThreadPoolExecutor(8) as pool:
        pools = set(pool.map(lambda _i: id(services.pool), range(32)))
        assert len(pools) == 1
        assert started("model-pool-expiry") == ["model-pool-expiry"]


def test_close_joins_every_thread_it_started_and_may_run_twice(started: Started) -> None:
    services = AppServices.create()
    services.pool.models()
    services.downloads.items()
    services.open_stores()
    services.close()
    services.close()
    assert not started("engine")
    assert not started("download-")


def test_after_close_nothing_is_built_again(started: Started) -> None:
    services = AppServices.create()
    services.close()
    with pytest.raises(Cancelled):
        services.pool  # noqa: B018
    assert not started("model-pool")


def test_the_server_gets_the_engine_and_the_request_log(tiny_model: Path, started: Started) -> None:
    import httpx

    from app.core.load_options import LoadOptions
    from app.core.server.app import ServerConfig

    with AppServices.create() as services:
        services.load_model(
            services.library.resolve(str(tiny_model)), LoadOptions(model_path=tiny_model, n_ctx=256)
        )
        logged = threading.Event()
        services.request_log.subscribe(lambda _record: logged.set())
        runner = services.start_server(ServerConfig(port=0))
        health = httpx.get(f"{runner.url}/health", timeout=10).json()
        assert health["model"] == "tiny-chatml"
        assert logged.wait(10)
        assert [r.path for r in services.request_log.records()] == ["/health"]
    assert not started("http-server")


def test_a_database_from_a_newer_homefire_stops_start_up_and_closes_what_opened() -> None:
    import sqlite3

    from app.core.errors import StorageError

    with AppServices.create() as first:
        first.open_stores()
        database = first.paths.database_file
    with sqlite3.connect(database) as db:
        db.execute("UPDATE schema_versions SET version = 999 WHERE component = 'chats'")
    services = AppServices.create()
    with pytest.raises(StorageError, match="newer Homefire"):
        services.open_stores()
    with pytest.raises(Cancelled):  # the ledger opened before the chats failed, and is closed
        services.ledger  # noqa: B018
