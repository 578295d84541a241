"""The Hub adapter against the loopback Hub: search, variants, and every refusal typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.catalog.hub import (
    HubClient,
    HubSettings,
    resolve_token,
    validate_repo_filename,
    validate_repo_id,
)
from app.core.downloads.cache_layout import RepoCache
from app.core.errors import (
    GatedRepo,
    HubError,
    HubOffline,
    RateLimited,
    RepoNotFound,
    UnsafeName,
)
from tests.fixtures.hub_server import Fault, HubServer, ServedFile, ServedRepo, tiny_gguf


def test_search_sorts_gguf_repos_by_downloads_likes_and_recency(
    hub_server: HubServer, hub: HubClient
) -> None:
    g = tiny_gguf(payload_bytes=1024)
    hub_server.add_repo(
        ServedRepo(
            "a/Qwen-GGUF",
            [ServedFile("q-Q4_0.gguf", g)],
            downloads=5,
            likes=9,
            created_at="2025-03-01T00:00:00.000Z",
        )
    )
    hub_server.add_repo(
        ServedRepo(
            "b/Qwen-GGUF",
            [ServedFile("q-Q4_0.gguf", g)],
            downloads=50,
            likes=1,
            created_at="2025-01-01T00:00:00.000Z",
        )
    )
    hub_server.add_repo(
        ServedRepo("c/Qwen-safetensors", [ServedFile("x.bin", b"x")], tags=("pytorch",))
    )

    assert [r.repo_id for r in hub.search("qwen")] == ["b/Qwen-GGUF", "a/Qwen-GGUF"]
    assert next(r.repo_id for r in hub.search("qwen", sort="likes")) == "a/Qwen-GGUF"
    assert next(r.repo_id for r in hub.search("qwen", sort="recent")) == "a/Qwen-GGUF"
    searched = [r for r in hub_server.requests() if r.path == "/api/models"]
    assert searched, "search goes through the Hub's /api/models route"


def test_variants_group_split_shards_and_skip_projectors(
    hub_server: HubServer, hub: HubClient
) -> None:
    g = tiny_gguf(payload_bytes=1024)
    hub_server.add_repo(
        ServedRepo(
            "org/Big-GGUF",
            [
                ServedFile("Big-Q4_K_M.gguf", g),
                ServedFile("Q8_0/Big-Q8_0-00001-of-00002.gguf", g),
                ServedFile("Q8_0/Big-Q8_0-00002-of-00002.gguf", g),
                ServedFile("mmproj-Big-F16.gguf", g),
                ServedFile("README.md", b"# hi", lfs=False),
            ],
        )
    )
    variants = {v.quant: v for v in hub.variants("org/Big-GGUF")}
    assert set(variants) == {"Q4_K_M", "Q8_0"}
    split = variants["Q8_0"]
    assert split.split_count == 2
    assert split.size_bytes == 2 * len(g)
    assert all(f.sha256 is not None and len(f.sha256) == 64 for f in split.files)


def test_missing_repo_and_missing_file_are_repo_not_found(
    hub_server: HubServer, hub: HubClient
) -> None:
    hub_server.add_repo(
        ServedRepo("org/Real-GGUF", [ServedFile("r-Q4_0.gguf", b"GGUF" + b"\0" * 60)])
    )
    with pytest.raises(RepoNotFound, match="org/Nope"):
        hub.list_files("org/Nope")
    with pytest.raises(RepoNotFound, match=r"other\.gguf"):
        hub.file_metadata("org/Real-GGUF", "other.gguf")


@pytest.mark.parametrize("token", [None, "wrong-token"])  # 401 without a token, 403 with one
def test_gated_repo_says_accept_the_licence_then_set_a_token(
    hub_server: HubServer, token: str | None
) -> None:
    hub_server.add_repo(
        ServedRepo(
            "meta/Gated-GGUF",
            [ServedFile("g-Q4_0.gguf", tiny_gguf(payload_bytes=1024))],
            gated=True,
            allowed_tokens=("good",),
        )
    )
    client = HubClient(HubSettings(hub_server.endpoint, offline=False, token=token))
    with pytest.raises(GatedRepo, match="accept the licence") as caught:
        client.file_metadata("meta/Gated-GGUF", "g-Q4_0.gguf")
    assert hub_server.endpoint + "/meta/Gated-GGUF" in caught.value.user_message
    assert any(r.path.endswith("/resolve/main/g-Q4_0.gguf") for r in hub_server.requests())
    allowed = HubClient(HubSettings(hub_server.endpoint, offline=False, token="good"))
    assert allowed.file_metadata("meta/Gated-GGUF", "g-Q4_0.gguf").sha256 is not None


def test_persistent_429_becomes_rate_limited(hub_server: HubServer, hub: HubClient) -> None:
    hub_server.add_fault("api", Fault.http_status(429, retry_after=0), times=10)
    with pytest.raises(RateLimited, match="rate-limiting"):
        hub.search("anything")


def test_offline_mode_never_touches_the_network(hub_server: HubServer) -> None:
    settings = HubSettings.from_env({"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": hub_server.endpoint})
    client = HubClient(settings)
    with pytest.raises(HubOffline, match="HF_HUB_OFFLINE"):
        client.search("qwen")
    with pytest.raises(HubOffline):
        client.variants("org/Model-GGUF")
    assert hub_server.requests() == []


def test_unreachable_hub_is_offline_error() -> None:
    client = HubClient(HubSettings("http://127.0.0.1:9", offline=False, token=None))
    with pytest.raises(HubOffline, match="cannot reach"):
        client.file_metadata("org/Model-GGUF", "m.gguf")


@pytest.mark.parametrize(
    "name",
    [
        "../x.gguf",
        "a/../../x.gguf",
        "a/..\\..\\x.gguf",
        "C:\\x.gguf",
        "D:x.gguf",
        "\\x.gguf",
        "\\\\host\\share\\x.gguf",
        "/etc/x.gguf",
        "a\x00b.gguf",
        "a//b.gguf",
        "x" * 300 + ".gguf",
    ],
)
def test_hostile_file_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeName):
        validate_repo_filename(name)


@pytest.mark.parametrize(
    "repo_id", ["../etc", "org/..", "org/../x", "/abs/path", "org\\name", "a/b/c", ""]
)
def test_hostile_repo_ids_are_refused(repo_id: str) -> None:
    with pytest.raises(UnsafeName):
        validate_repo_id(repo_id)


def test_a_hub_listing_with_a_traversal_name_is_refused(
    hub_server: HubServer, hub: HubClient
) -> None:
    hub_server.add_repo(
        ServedRepo("evil/Repo-GGUF", [ServedFile("../../escape-Q4_0.gguf", b"GGUF")])
    )
    with pytest.raises(UnsafeName, match="escape"):
        hub.variants("evil/Repo-GGUF")


def test_token_comes_from_hf_token_then_keyring() -> None:
    assert resolve_token({"HF_TOKEN": "hf_env"}, lambda: "hf_keyring") == "hf_env"
    assert resolve_token({}, lambda: "hf_keyring") == "hf_keyring"


@pytest.mark.parametrize(
    "digest", ["a" * 63, "a" * 65, "A" * 64, "../../etc/passwd", "ab/" + "c" * 61, "g" * 64]
)
def test_etag_or_digest_that_is_not_64_hex_is_refused(
    hub_server: HubServer, hub: HubClient, digest: str, homefire_home: Path
) -> None:
    hub_server.add_repo(
        ServedRepo(
            "odd/Digest-GGUF",
            [ServedFile("d-Q4_0.gguf", tiny_gguf(payload_bytes=1024), advertised_sha256=digest)],
        )
    )
    before = set(homefire_home.rglob("*"))
    with pytest.raises(HubError, match="malformed sha256"):
        hub.variants("odd/Digest-GGUF")
    with pytest.raises(UnsafeName):
        RepoCache(homefire_home / "models", "odd/Digest-GGUF").blob(digest)
    assert set(homefire_home.rglob("*")) == before
