"""Several models over real HTTP: loaded on request, named as clients name them, kept alive or
unloaded as Ollama's clients ask, and refused with 507 when memory cannot hold them. Real SDK
clients (openai, ollama), real llama.cpp on tiny GGUFs, a real SQLite-backed AppServices."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from tests.fixtures.tiny_llama import write_tiny_llama
from tests.server.conftest import LibraryServerFactory

Start = Callable[..., str]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pool-folder")
    for seed, name in enumerate(("pool-alpha", "pool-bravo")):
        write_tiny_llama(folder / f"{name}.gguf", seed=seed)
    return folder


@pytest.fixture
def start(model_folder: Path, library_server: LibraryServerFactory) -> Start:
    """Homefire's server over the folder's models, none loaded."""

    def run(**engine: object) -> str:
        return library_server(model_folder, **{"n_ctx": 256, "parallel": 2, **engine})

    return run


def _loaded(url: str) -> dict[str, dict[str, object]]:
    return {m["name"]: m for m in httpx.get(f"{url}/api/ps", timeout=10).json()["models"]}


def test_two_models_load_on_request_and_serve_at_once(start: Start) -> None:
    url = start()
    listed = {m["id"] for m in httpx.get(f"{url}/v1/models", timeout=10).json()["data"]}
    assert {"pool-alpha", "pool-bravo"} <= listed  # not loaded, yet listed
    assert not _loaded(url)

    chat = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0).chat
    reply = chat.completions.create(
        model="pool-alpha", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    assert reply.model == "pool-alpha"
    assert reply.usage is not None
    assert reply.usage.completion_tokens <= 3

    client = ollama.Client(host=url)
    first = client.chat(
        model="pool-bravo", messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 3}
    )
    assert first.model == "pool-bravo"
    assert (first.load_duration or 0) > 0  # it waited for the load
    again = client.chat(
        model="pool-bravo", messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 3}
    )
    assert again.load_duration == 0

    running = _loaded(url)
    assert set(running) == {"pool-alpha", "pool-bravo"}
    for entry in running.values():
        assert int(entry["size"]) > 0  # type: ignore[call-overload]
        assert entry["size_vram"] == 0
        assert entry["context_length"] == 256
    health = httpx.get(f"{url}/health", timeout=10).json()
    assert {m["model"] for m in health["models"]} == {"pool-alpha", "pool-bravo"}
    assert health["model"] == "pool-bravo"  # used last: what a request naming none gets


def test_keep_alive_zero_without_a_prompt_unloads_the_model(start: Start) -> None:
    url = start()
    client = ollama.Client(host=url)
    loaded = client.generate(model="pool-alpha")  # Ollama's preload idiom
    assert loaded.done_reason == "load"
    assert set(_loaded(url)) == {"pool-alpha"}
    unloaded = client.generate(model="pool-alpha", keep_alive=0)  # and its unload idiom
    assert unloaded.done_reason == "unload"
    assert client.ps().models == []  # answered once the model was unloaded


def _eventually(condition: Callable[[], bool], timeout_s: float = 30) -> bool:
    """A hang guard, not a timing: the hold ends just after the response's last byte."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_request_with_keep_alive_zero_unloads_after_it(start: Start) -> None:
    url = start()
    client = ollama.Client(host=url)
    reply = client.generate(
        model="pool-bravo", prompt="Hi", options={"num_predict": 2}, keep_alive=0
    )
    assert reply.done
    assert _eventually(lambda: "pool-bravo" not in _loaded(url))


def test_a_larger_num_ctx_reloads_the_model(start: Start) -> None:
    url = start()
    client = ollama.Client(host=url)
    client.generate(model="pool-alpha", prompt="Hi", options={"num_predict": 1})
    assert _loaded(url)["pool-alpha"]["context_length"] == 256
    reply = client.generate(
        model="pool-alpha", prompt="Hi", options={"num_predict": 1, "num_ctx": 512}
    )
    assert (reply.load_duration or 0) > 0
    assert _loaded(url)["pool-alpha"]["context_length"] == 512


def test_a_model_that_cannot_fit_is_507_at_once_in_each_dialect(start: Start) -> None:
    url = start(memory_budget_mb=1)
    answer = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "pool-alpha", "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    )
    assert answer.status_code == 507
    error = answer.json()["error"]
    assert error["code"] == "insufficient_memory"
    assert "pool-alpha needs" in error["message"]
    assert "MiB" in error["message"]
    assert error["needed_bytes"] > error["available_bytes"]
    with pytest.raises(ollama.ResponseError) as refused:
        ollama.Client(host=url).chat(
            model="pool-alpha", messages=[{"role": "user", "content": "x"}]
        )
    assert refused.value.status_code == 507
    assert "pool-alpha needs" in refused.value.error
    assert not _loaded(url)


def test_unknown_and_ambiguous_names_are_clear_errors(start: Start) -> None:
    url = start()
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "Hi"}]
        )
    assert unknown.value.code == "model_not_found"
    assert "pool-alpha" in unknown.value.message  # names a few that exist
    with pytest.raises(openai.BadRequestError) as ambiguous:
        client.chat.completions.create(model="pool-", messages=[{"role": "user", "content": "Hi"}])
    assert ambiguous.value.code == "model_ambiguous"
    assert "pool-alpha" in ambiguous.value.message
    assert "pool-bravo" in ambiguous.value.message
    # A model's details never load it.
    detail = httpx.get(f"{url}/v1/models/pool-alpha", timeout=10).json()
    assert detail["id"] == "pool-alpha"
    assert detail["meta"]["loaded"] is False
    assert httpx.get(f"{url}/v1/models/pool-", timeout=10).status_code == 400
    assert httpx.get(f"{url}/v1/models/no-such-model", timeout=10).status_code == 404
    assert not _loaded(url)


def test_with_load_on_request_off_only_loaded_models_answer(start: Start) -> None:
    url = start(load_on_request=False)
    listed = httpx.get(f"{url}/v1/models", timeout=10).json()["data"]
    assert listed == []
    answer = httpx.post(
        f"{url}/api/chat",
        json={"model": "pool-alpha", "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    )
    assert answer.status_code == 404
    assert "not loaded" in answer.json()["error"]
