"""Library sources over fake folder trees shaped like each tool's real layout."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from app.core.catalog.hub import HubFile
from app.core.library.sources import default_sources
from app.core.library.sources.existing_copies import OtherToolsCopies
from app.core.library.sources.folders import FolderSource
from app.core.library.sources.hf_cache import HfCacheSource, hf_cache_dir
from app.core.library.sources.lm_studio import LmStudioSource, lm_studio_dirs
from app.core.library.sources.ollama import OllamaSource
from app.core.library.sources.removal import RemovalRefused, remove_model
from tests.fixtures.hub_server import tiny_gguf

COMMIT = "a" * 40


def hf_repo(root: Path, repo_id: str, files: dict[str, bytes], ref: bool = True) -> Path:
    """models--org--name/{blobs/<sha256>, snapshots/<commit>/<file> -> ../../blobs, refs/main}."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    for name, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        blob = repo / "blobs" / sha
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / COMMIT / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(COMMIT)
    return repo


def ollama_model(root: Path, name: str, tag: str, data: bytes, digest: str | None = None) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    blob = root / "blobs" / f"sha256-{sha}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "digest": "sha256:" + "0" * 64,
                    "size": 10,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.ollama.image.model",
                        "digest": digest or f"sha256:{sha}",
                        "size": len(data),
                    },
                    {
                        "mediaType": "application/vnd.ollama.image.template",
                        "digest": "sha256:" + "1" * 64,
                        "size": 5,
                    },
                ],
            }
        )
    )
    return blob


@pytest.fixture
def gguf() -> bytes:
    return tiny_gguf(architecture="qwen3", file_type=15, payload_bytes=2048)


def test_hf_cache_lists_complete_snapshots_with_header_facts(tmp_path: Path, gguf: bytes) -> None:
    hf_repo(tmp_path, "Qwen/Qwen3-GGUF", {"Qwen3-Q4_K_M.gguf": gguf, "README.md": b"hi"})
    [model] = HfCacheSource(tmp_path).scan()
    assert model.name == "Qwen/Qwen3-GGUF:Q4_K_M"
    assert model.architecture == "qwen3"
    assert model.quant == "Q4_K_M"
    assert model.size_bytes == len(gguf)
    assert model.owned is False
    assert model.repo_id == "Qwen/Qwen3-GGUF"


def test_hf_cache_hides_unfinished_blobs_and_incomplete_splits(tmp_path: Path, gguf: bytes) -> None:
    repo = hf_repo(tmp_path, "org/Split-GGUF", {"S-Q8_0-00001-of-00002.gguf": gguf})
    dangling = repo / "snapshots" / COMMIT / "Other-Q4_0.gguf"
    dangling.symlink_to("../../blobs/" + "f" * 64)  # its blob is still an .incomplete
    (repo / "blobs" / ("f" * 64 + ".incomplete")).write_bytes(gguf[:100])
    assert list(HfCacheSource(tmp_path).scan()) == []


def test_hf_cache_groups_split_models_as_one(tmp_path: Path, gguf: bytes) -> None:
    hf_repo(
        tmp_path,
        "org/Split-GGUF",
        {
            "Q8_0/S-Q8_0-00001-of-00002.gguf": gguf,
            "Q8_0/S-Q8_0-00002-of-00002.gguf": gguf + b"x",
        },
    )
    [model] = HfCacheSource(tmp_path).scan()
    assert len(model.parts) == 2
    assert model.size_bytes == 2 * len(gguf) + 1


def test_hf_cache_location_follows_hf_env() -> None:
    assert hf_cache_dir({"HF_HUB_CACHE": "/x/hub"}) == Path("/x/hub")
    assert hf_cache_dir({"HF_HOME": "/y"}) == Path("/y/hub")


def test_lm_studio_new_and_old_folders(tmp_path: Path, gguf: bytes) -> None:
    new = tmp_path / ".lmstudio" / "models" / "lmstudio-community" / "Qwen3-GGUF"
    old = tmp_path / ".cache" / "lm-studio" / "models" / "bartowski" / "Llama-GGUF"
    for folder, name in ((new, "Qwen3-Q4_K_M.gguf"), (old, "Llama-Q6_K.gguf")):
        folder.mkdir(parents=True)
        (folder / name).write_bytes(gguf)
    (new / "notes.txt").write_text("not a model")
    (new / "broken-Q2_K.gguf").write_bytes(b"NOPE" * 10)
    source = LmStudioSource(lm_studio_dirs({"HOME": str(tmp_path)}))
    names = sorted(m.name for m in source.scan())
    assert names == ["bartowski/Llama-GGUF:Q4_K_M", "lmstudio-community/Qwen3-GGUF:Q4_K_M"]


def test_lm_studio_override_env(tmp_path: Path) -> None:
    assert lm_studio_dirs({"HOMEFIRE_LMSTUDIO_MODELS": str(tmp_path)}) == [tmp_path]


def test_ollama_models_through_manifests(tmp_path: Path, gguf: bytes) -> None:
    blob = ollama_model(tmp_path, "qwen3", "4b", gguf)
    [model] = OllamaSource(tmp_path).scan()
    assert model.name == "qwen3:4b"
    assert model.path == blob
    assert model.architecture == "qwen3"
    assert model.source == "ollama"


@pytest.mark.parametrize(
    "digest",
    ["sha256:../../../etc/passwd", "sha256:abc", "../sha256-" + "a" * 64, "md5:" + "a" * 32],
)
def test_ollama_malformed_digest_never_becomes_a_path(
    tmp_path: Path, gguf: bytes, digest: str
) -> None:
    ollama_model(tmp_path, "evil", "latest", gguf, digest=digest)
    assert list(OllamaSource(tmp_path).scan()) == []


def test_user_folders_found_recursively(tmp_path: Path, gguf: bytes) -> None:
    (tmp_path / "models" / "deep").mkdir(parents=True)
    (tmp_path / "models" / "deep" / "my-model.Q5_K_M.gguf").write_bytes(gguf)
    [model] = FolderSource([tmp_path / "models"]).scan()
    assert model.name == "my-model.Q5_K_M"
    assert model.source == "folder"


def test_existing_copy_in_ollama_is_reused_only_when_hash_matches(
    tmp_path: Path, gguf: bytes
) -> None:
    ollama_model(tmp_path / "ollama", "qwen3", "4b", gguf)
    copies = OtherToolsCopies(None, tmp_path / "ollama", [])
    good = HubFile("Qwen3-Q4_K_M.gguf", len(gguf), hashlib.sha256(gguf).hexdigest())
    found = copies.find("Qwen/Qwen3-GGUF", [good])
    assert found is not None
    assert found[0] == "Ollama"
    blob = found[1][0]
    blob.write_bytes(b"GGUF" + bytes(len(gguf) - 4))  # same size, different bytes
    assert copies.find("Qwen/Qwen3-GGUF", [good]) is None


def test_existing_copy_in_hf_cache_is_reused(tmp_path: Path, gguf: bytes) -> None:
    hf_repo(tmp_path, "Qwen/Qwen3-GGUF", {"Qwen3-Q4_K_M.gguf": gguf})
    copies = OtherToolsCopies(tmp_path, None, [])
    wanted = HubFile("Qwen3-Q4_K_M.gguf", len(gguf), hashlib.sha256(gguf).hexdigest())
    found = copies.find("Qwen/Qwen3-GGUF", [wanted])
    assert found is not None
    assert found[0] == "the Hugging Face cache"


def test_rm_deletes_homefire_downloads_whole(tmp_path: Path, gguf: bytes) -> None:
    repo = hf_repo(tmp_path, "org/Mine-GGUF", {"m-Q4_K_M.gguf": gguf})
    (repo / "blobs" / ("e" * 64 + ".part")).write_bytes(b"partial")
    [model] = HfCacheSource(tmp_path, name="homefire", owned=True).scan()
    remove_model(model)
    assert not repo.exists()


def test_rm_refuses_other_tools_files_unless_forced(tmp_path: Path, gguf: bytes) -> None:
    hf_repo(tmp_path / "hf", "org/Theirs-GGUF", {"t-Q4_K_M.gguf": gguf})
    [model] = HfCacheSource(tmp_path / "hf").scan()
    with pytest.raises(RemovalRefused, match="Hugging Face cache"):
        remove_model(model)
    assert model.path.exists()
    remove_model(model, force=True)
    assert not model.path.exists()


def test_rm_never_deletes_ollama_blobs(tmp_path: Path, gguf: bytes) -> None:
    ollama_model(tmp_path, "qwen3", "4b", gguf)
    [model] = OllamaSource(tmp_path).scan()
    with pytest.raises(RemovalRefused, match="ollama rm qwen3:4b"):
        remove_model(model, force=True)
    assert model.path.exists()


def test_default_sources_put_homefire_first(tmp_path: Path) -> None:
    sources = default_sources(tmp_path / "models", [], {"HOME": str(tmp_path)})
    assert [s.name for s in sources] == [
        "homefire",
        "huggingface-cache",
        "lm-studio",
        "ollama",
        "folder",
    ]


@pytest.mark.parametrize(
    "ref",
    ["..", "../..", "/etc", COMMIT + "/../..", "b" * 41, "B" * 40, "x" * 100_000],
)
def test_hf_cache_refs_main_must_be_40_hex(tmp_path: Path, gguf: bytes, ref: str) -> None:
    repo = hf_repo(tmp_path, "org/Ref-GGUF", {"r-Q4_K_M.gguf": gguf})
    (repo / "refs" / "main").write_text(ref)
    # A GGUF that a bad ref would reach: the repo folder itself (``snapshots/..``).
    (repo / "planted-Q8_0.gguf").write_bytes(gguf)
    [model] = HfCacheSource(tmp_path).scan()
    assert model.path.parent == repo / "snapshots" / COMMIT
