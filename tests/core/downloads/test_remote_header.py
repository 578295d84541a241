"""A Hub file's GGUF header read with Range requests only: fit needs no download."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.core.catalog.gguf_header import read_header_parts
from app.core.catalog.hub import HubClient
from app.core.catalog.remote_gguf import BLOCKS_KEPT, RemoteFile, remote_sources, variants_for_repo
from app.core.errors import GatedRepo
from tests.fixtures.gguf_writer import kv_string, raw_gguf, write_tiny_model
from tests.fixtures.hub_server import HubServer, ServedFile, ServedRepo


def test_variants_for_repo_reads_headers_without_the_weights(
    hub_server: HubServer, hub: HubClient, tmp_path: Path
) -> None:
    [path] = write_tiny_model(tmp_path / "tiny.gguf", n_layers=3, n_embd=512, n_ff=4096)
    data = path.read_bytes() + bytes(4 << 20)  # pretend the weights are large
    hub_server.add_repo(ServedRepo("acme/Remote-GGUF", [ServedFile("tiny-F16.gguf", data)]))

    [variant] = variants_for_repo("acme/Remote-GGUF", hub)

    assert variant.facts.n_layers == 3
    assert variant.file_size == len(data)
    assert variant.size_basis == "Hub listing"
    cdn = [r for r in hub_server.requests() if r.path.startswith("/cdn-lfs/")]
    assert cdn
    assert all(r.range is not None for r in cdn)
    assert hub_server.bytes_sent("tiny-F16.gguf") < len(data) // 2


def test_gated_remote_header_is_a_gated_error(
    hub_server: HubServer, hub: HubClient, tmp_path: Path
) -> None:
    [path] = write_tiny_model(tmp_path / "tiny.gguf")
    hub_server.add_repo(
        ServedRepo("meta/Gated-GGUF", [ServedFile("g-F16.gguf", path.read_bytes())], gated=True)
    )
    with pytest.raises(GatedRepo):
        variants_for_repo("meta/Gated-GGUF", hub)


def test_a_long_remote_header_keeps_only_a_few_blocks(
    hub_server: HubServer, hub: HubClient
) -> None:
    # 6 MiB of metadata: the parser walks through seven 1 MiB blocks, the reader keeps a few.
    notes = tuple(kv_string(f"general.note.{i}", "d" * (512 << 10)) for i in range(12))
    data = raw_gguf(kvs=(kv_string("general.architecture", "llama"), *notes)) + bytes(64)
    hub_server.add_repo(ServedRepo("acme/Long-GGUF", [ServedFile("long-F16.gguf", data)]))
    [variant] = [v for v in hub.variants("acme/Long-GGUF") if v.complete]
    with httpx.Client(follow_redirects=True, timeout=30.0) as client:
        [source] = remote_sources(hub, client, variant)
        assert isinstance(source, RemoteFile)
        header = read_header_parts([source])
    assert header.metadata["general.note.11"] == "d" * (512 << 10)
    assert source.requests_made >= 6
    assert source.blocks_kept <= BLOCKS_KEPT
