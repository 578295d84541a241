"""Worker addresses, and the probe that refuses what is not a compatible worker in bounded time."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.core.cluster.loader import open_split_backend, probe_workers
from app.core.cluster.worker import (
    DEFAULT_PORT,
    RPC_PROTO_MAJOR,
    RPC_PROTO_MINOR,
    WorkerAddress,
    parse_workers,
    probe_worker,
)
from app.core.errors import ConfigError, WorkerIncompatible, WorkerTooSmall, WorkerUnreachable
from app.core.load_options import LoadOptions
from tests.fixtures.rpc_workers import (
    fake_peer,
    garbage_peer,
    http_peer,
    require_rpc,
    rpc_peer,
    silent_peer,
    workers,
)

GIB = 2**30


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("192.168.1.20:50052", "192.168.1.20", 50052),
        ("studio.local:6000", "studio.local", 6000),
        ("  mac-mini  ", "mac-mini", DEFAULT_PORT),
        ("[fe80::1]:7000", "fe80::1", 7000),
        ("[::1]", "::1", DEFAULT_PORT),
    ],
)
def test_worker_addresses_parse(text: str, host: str, port: int) -> None:
    assert WorkerAddress.parse(text) == WorkerAddress(host, port)


@pytest.mark.parametrize(
    "text",
    ["", "host:0", "host:65536", "host:port", "fe80::1:7000", "[fe80::1", "[nope]:1", "a b:1"],
)
def test_malformed_worker_addresses_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        WorkerAddress.parse(text)


def test_a_worker_list_splits_on_commas_and_spaces_and_refuses_repeats() -> None:
    assert [str(a) for a in parse_workers("a:1, b:2  c")] == ["a:1", "b:2", f"c:{DEFAULT_PORT}"]
    with pytest.raises(ConfigError, match="twice"):
        parse_workers("a:1 a:1")


def test_an_ipv6_worker_is_refused_in_words_before_ggml_sees_it() -> None:
    with pytest.raises(ConfigError, match="IPv6"):
        probe_workers(["[::1]:50052"])


def test_a_real_worker_reports_its_version_and_memory(tmp_path: Path) -> None:
    require_rpc()
    with workers(tmp_path, 1) as (worker,):
        memory = probe_worker(WorkerAddress.parse(worker.address), timeout_s=10)
        # The same version as this Homefire's ggml: the constant the probe checks is current.
        assert memory.version[:2] == (RPC_PROTO_MAJOR, RPC_PROTO_MINOR)
        assert 0 < memory.free_bytes <= memory.total_bytes
        assert memory.devices == 1
        assert worker.stop() == 0  # SIGTERM stops it cleanly


def test_nothing_listening_is_unreachable() -> None:
    with fake_peer(garbage_peer) as address:
        pass  # closed again: the port is free now
    with pytest.raises(WorkerUnreachable):
        probe_worker(WorkerAddress.parse(address), timeout_s=2)


@pytest.mark.parametrize("reply", [garbage_peer, http_peer], ids=["garbage", "http"])
def test_a_peer_that_is_not_ggml_rpc_is_incompatible(reply: object) -> None:
    # Refused on its first answer: an incompatibility, not the deadline's unreachability.
    with fake_peer(reply) as address, pytest.raises(WorkerIncompatible):  # type: ignore[arg-type]
        probe_worker(WorkerAddress.parse(address), timeout_s=30)


def test_a_peer_that_never_answers_ends_at_the_deadline() -> None:
    with (
        fake_peer(silent_peer) as address,
        pytest.raises(WorkerUnreachable, match="did not answer in time"),
    ):
        probe_worker(WorkerAddress.parse(address), timeout_s=0.5)


@pytest.mark.parametrize("version", [(RPC_PROTO_MAJOR - 1, 0, 0), (RPC_PROTO_MAJOR + 1, 0, 0)])
def test_another_protocol_version_is_incompatible(version: tuple[int, int, int]) -> None:
    with (
        fake_peer(rpc_peer(version, GIB, GIB)) as address,
        pytest.raises(WorkerIncompatible, match=f"v{version[0]}"),
    ):
        probe_worker(WorkerAddress.parse(address), timeout_s=5)


def test_a_worker_with_too_little_memory_is_refused_before_any_weights_move(
    tiny_model: Path,
) -> None:
    require_rpc()
    # The fake fails the test if anything but the probe's three questions reaches it.
    peer = rpc_peer((RPC_PROTO_MAJOR, RPC_PROTO_MINOR, 0), 2**10, 2**10)
    with fake_peer(peer) as address:
        options = LoadOptions(tiny_model, n_ctx=64, parallel=1, workers=(address,))
        with pytest.raises(WorkerTooSmall, match=address):
            open_split_backend(options)


def test_a_real_http_server_is_refused_within_the_deadline() -> None:
    # Python's HTTP server waits for a request line that the probe never sends: the probe's own
    # deadline ends it, and says what may be listening there.
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        address = WorkerAddress("127.0.0.1", server.server_address[1])
        with pytest.raises((WorkerIncompatible, WorkerUnreachable), match="not a Homefire worker"):
            probe_worker(address, timeout_s=1)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
