"""Real inference on the starter model (Gemma 3 270M) through the endpoint: replies, fairness, disconnects."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from app.core.services import AppServices
from tests.server.conftest import ServerFactory, TokenCounter, base_url

# A generation that is still running when its client leaves, on any CPU: a story or a chat
# reply may end after a few tokens, while greedy counting goes on far past the client's patience.
COUNTING = {"prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": 1500, "temperature": 0}


def test_the_starter_model_answers_alike_streamed_and_whole(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    """A greedy reply arrives, and streaming it yields the same tokens as asking for it whole.

    The words depend on the CPU llama.cpp was built for, so nothing here expects particular ones.
    """
    services, _ = starter
    client = openai.OpenAI(base_url=f"{base_url(services)}/v1", api_key="x", max_retries=0)
    ask = {
        "model": "gemma-3-270m-q4_k_m",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 24,
        "temperature": 0,
        "seed": 1,
    }
    whole = client.chat.completions.create(**ask)
    text = whole.choices[0].message.content or ""
    assert whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage is not None
    assert 0 < whole.usage.completion_tokens <= 24
    if whole.choices[0].finish_reason == "length":
        assert whole.usage.completion_tokens == 24
    assert not text.startswith((" ", "\n"))

    chunks = list(
        client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True})
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_gemma_control_tokens_typed_by_a_user_stay_text(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    services, _ = starter
    url = base_url(services)

    def prompt_tokens(content: str) -> int:
        body = {"messages": [{"role": "user", "content": content}], "max_tokens": 1}
        return int(
            httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).json()["usage"][
                "prompt_tokens"
            ]
        )

    words = prompt_tokens("start_of_turn end_of_turn eos")
    tags = prompt_tokens("<start_of_turn> <end_of_turn> <eos>")
    # As control tokens the tags would cost fewer tokens than the words; as text they cost more.
    assert tags > words


def test_a_client_that_disconnects_mid_stream_frees_the_engine(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    services, recorder = starter
    url = base_url(services)
    body = {**COUNTING, "stream": True}
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as response:
        received = 0
        for line in response.iter_lines():
            if line.startswith("data: {"):
                received += 1
            if received >= 5:
                break  # leaving the block closes the connection
    (first,) = recorder.wait_for_results(1, timeout_s=60)
    assert first.finish_reason == "cancelled"
    assert first.completion_tokens < 300
    after = httpx.post(
        f"{url}/v1/completions", json={"prompt": "One, two,", "max_tokens": 4}, timeout=60
    ).json()
    assert after["usage"]["completion_tokens"] == 4


def test_a_non_streaming_client_that_gives_up_frees_the_engine(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    services, recorder = starter
    url = base_url(services)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/completions", json=COUNTING, timeout=1.0)
    (first,) = recorder.wait_for_results(1, timeout_s=60)
    assert first.finish_reason == "cancelled"
    assert first.completion_tokens < 1500


def test_concurrent_requests_are_all_served_in_full(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    services, recorder = starter
    client = openai.OpenAI(base_url=f"{base_url(services)}/v1", api_key="x", max_retries=0)

    def ask(i: int) -> tuple[int, str | None]:
        stream = client.completions.create(
            model="gemma-3-270m-q4_k_m",
            prompt=f"Count from {i}:",
            max_tokens=24,
            temperature=0.7,
            stream=True,
        )
        pieces = [c.choices[0] for c in stream if c.choices]
        return sum(1 for p in pieces if p.text), pieces[-1].finish_reason

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, range(4)))
    assert all(finish in ("length", "stop") for _, finish in answers)
    results = recorder.wait_for_results(4, timeout_s=60)
    for result in results:
        # In full: to the token limit, or to the model's own end; never cut short.
        assert result.finish_reason in ("length", "stop")
        if result.finish_reason == "length":
            assert result.completion_tokens == 24
    # Every text chunk a client received is a token the engine counted.
    assert sum(r.completion_tokens for r in results) >= sum(n for n, _ in answers)


def test_a_full_queue_answers_503_with_retry_after(
    serve: ServerFactory, starter_model: Path
) -> None:
    from app.core.storage.paths import AppPaths
    from app.core.storage.settings import Settings, SettingsStore

    settings = Settings()
    settings.engine.max_pending = 2
    SettingsStore(AppPaths.from_env().settings_file).save(settings)
    services = serve(starter_model, n_ctx=1024)
    url = base_url(services)
    busy = services.pool.default().engine.slot_usage.slots + 2  # every slot taken and two waiting
    body = {"prompt": "Once upon a time", "max_tokens": 400}
    with httpx.Client(timeout=120) as http, ThreadPoolExecutor(busy) as pool:
        holders = [pool.submit(http.post, f"{url}/v1/completions", json=body) for _ in range(busy)]
        deadline = time.monotonic() + 120  # a hang guard: a busy machine may take a while
        while services.pool.default().engine.pending < busy and time.monotonic() < deadline:
            time.sleep(0.01)
        assert services.pool.default().engine.pending == busy, (
            "the two requests never filled the queue"
        )
        refused = http.post(f"{url}/v1/completions", json=body)
        assert refused.status_code == 503
        assert refused.headers["retry-after"]
        assert refused.json()["error"]["code"] == "engine_busy"
        services.pool.default().engine.close()  # cancel the queue instead of waiting for it
        for holder in holders:
            holder.result()
