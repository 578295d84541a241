"""``GET /metrics`` over real HTTP, parsed with prometheus_client's own parser: counters move by
exactly the requests made and the tokens their usage reported; the queue and the loaded model
are read when scraped; each server counts alone; the key guards it like any route."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.engine.request import GenerationRequest
from app.core.engine.result import GenerationResult
from app.core.server.client_names import INFILL_CLIENT
from app.core.server.metrics import MAX_CLIENT_LABELS, NO_ROUTE, OTHER
from app.core.services import AppServices
from tests.server.conftest import ServerFactory, base_url
from tests.server.test_endpoint_safety import wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
MODEL = "tiny-coder"
KEY = "s3cret-metrics-key"


def scrape(url: str, headers: dict[str, str] | None = None) -> Samples:
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_of(samples: Samples, route: str, method: str = "POST", status: str = "200") -> float:
    return value(samples, "homefire_http_requests_total", route=route, method=method, status=status)


@pytest.fixture
def services(serve: ServerFactory, tiny_coder_model: Path) -> AppServices:
    return serve(tiny_coder_model, n_ctx=512)


@pytest.fixture
def url(services: AppServices) -> str:
    return base_url(services)


def test_requests_and_tokens_move_by_exactly_what_was_served(url: str) -> None:
    before = scrape(url)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="any", max_retries=0)
    usages = [
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=n
        ).usage
        for n in (3, 5)
    ]
    client.models.retrieve(MODEL)
    infill = httpx.post(
        f"{url}/infill",
        json={"input_prefix": "def f(", "input_suffix": "):", "n_predict": 4},
        headers={"user-agent": "curl/8.5.0"},
        timeout=60,
    ).json()
    assert httpx.get(f"{url}/no/such/route/{id(url)}", timeout=10).status_code == 404
    # A record is written once its response has gone out, which can be after the client read it.
    assert wait_for(lambda: requests_of(scrape(url), NO_ROUTE, "GET", "404") == 1)
    after = scrape(url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert (
        requests_of(after, "/v1/chat/completions") - requests_of(before, "/v1/chat/completions")
        == 2
    )
    # Routes are labelled by their template, never by the path a client sent.
    assert requests_of(after, "/v1/models/{model_id:path}", "GET") == 1
    assert requests_of(after, "/infill") == 1
    assert requests_of(after, "/metrics", "GET") >= 1
    assert not any("no/such" in dict(labels).get("route", "") for _, labels in after)
    sdk = {"model": MODEL, "client": "openai-python"}
    plugin = {"model": MODEL, "client": INFILL_CLIENT}
    assert all(usage is not None for usage in usages)
    prompt = sum(usage.prompt_tokens for usage in usages if usage is not None)
    completion = sum(usage.completion_tokens for usage in usages if usage is not None)
    assert moved("homefire_prompt_tokens_total", **sdk) == prompt
    assert moved("homefire_completion_tokens_total", **sdk) == completion
    assert moved("homefire_prompt_tokens_total", **plugin) == infill["tokens_evaluated"]
    assert moved("homefire_completion_tokens_total", **plugin) == infill["tokens_predicted"]
    # Every generation that produced a token has a time to first token; decode speed needs two.
    counts = [usage.completion_tokens for usage in usages if usage is not None]
    counts.append(infill["tokens_predicted"])
    assert moved("homefire_time_to_first_token_seconds_count", model=MODEL) == 3
    with_speed = sum(1 for n in counts if n >= 2)
    assert moved("homefire_decode_tokens_per_second_count", model=MODEL) == with_speed


def test_the_loaded_model_and_its_memory_are_read_when_scraped(
    services: AppServices, url: str
) -> None:
    loaded = services.pool.default()
    assert loaded is not None
    info = loaded.info
    samples = scrape(url)
    assert value(samples, "homefire_model_loaded", model=MODEL) == 1
    assert value(samples, "homefire_model_file_bytes", model=MODEL) == info.path.stat().st_size
    assert info.rss_growth_bytes is not None
    assert value(samples, "homefire_model_memory_bytes", model=MODEL) == max(
        info.rss_growth_bytes, 0
    )
    assert value(samples, "homefire_model_context_tokens", model=MODEL) == 512
    health = httpx.get(f"{url}/health", timeout=10).json()
    assert value(samples, "homefire_sequence_slots", model=MODEL) == health["slots"]["total"]
    services.pool.unload(loaded.name).result()
    assert not any(name == "homefire_model_loaded" for name, _ in scrape(url))


class _Gate:
    """An engine observer that holds the engine thread at the first token until opened."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.reached = threading.Event()

    def generation_started(self, *args: object) -> None:
        pass

    def generation_progressed(self, job_id: int, completion_tokens: int) -> None:
        self.reached.set()
        assert self.opened.wait(60)

    def generation_finished(
        self, job_id: int, result: GenerationResult | None, error: object
    ) -> None:
        pass


@pytest.fixture
def gate(services: AppServices) -> Iterator[_Gate]:
    gate = _Gate()
    services.pool.add_observer(gate)
    yield gate
    gate.opened.set()


def test_queue_depth_is_the_engines_at_scrape_time(
    services: AppServices, url: str, gate: _Gate
) -> None:
    loaded = services.pool.default()
    assert loaded is not None
    engine = loaded.engine
    # A grammar makes the first token one that goes on, so the gate is reached.
    grammar = 'root ::= "aaaaaaaa"'
    running = engine.generate(GenerationRequest(prompt="a", grammar=grammar, max_tokens=50))
    assert gate.reached.wait(60)  # the engine thread now stands inside a step
    waiting = engine.generate(GenerationRequest(prompt="b", max_tokens=2))
    samples = scrape(url)
    assert value(samples, "homefire_active_sequences", model=MODEL) == 1
    assert value(samples, "homefire_queued_requests", model=MODEL) == 1
    gate.opened.set()
    running.result(60)
    waiting.result(60)
    idle = scrape(url)
    assert value(idle, "homefire_queued_requests", model=MODEL) == 0
    assert value(idle, "homefire_active_sequences", model=MODEL) == 0


def test_two_servers_in_one_process_count_apart(
    serve: ServerFactory, tiny_coder_model: Path, url: str
) -> None:
    other = base_url(serve(tiny_coder_model, n_ctx=512))
    httpx.post(f"{url}/infill", json={"input_prefix": "x", "n_predict": 2}, timeout=60)
    assert wait_for(lambda: requests_of(scrape(url), "/infill") == 1)
    samples = scrape(other)
    assert requests_of(samples, "/infill") == 0
    assert not any(name == "homefire_prompt_tokens_total" for name, _ in samples)


def test_with_a_key_metrics_need_it_like_every_other_route(
    serve: ServerFactory, tiny_coder_model: Path
) -> None:
    url = base_url(serve(tiny_coder_model, n_ctx=512, api_key=KEY))
    refused = httpx.get(f"{url}/metrics", timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    samples = scrape(url, {"authorization": f"Bearer {KEY}"})
    assert value(samples, "homefire_model_loaded", model=MODEL) == 1
    assert scrape(url, {"x-api-key": KEY})
    # The refused scrape was counted too, though no route ran.
    assert requests_of(scrape(url, {"x-api-key": KEY}), NO_ROUTE, "GET", "401") == 1


def test_without_a_key_metrics_are_open_on_loopback(url: str) -> None:
    assert value(scrape(url), "homefire_model_loaded", model=MODEL) == 1


def test_clients_inventing_names_and_methods_cannot_grow_the_registry(url: str) -> None:
    with httpx.Client(timeout=60) as client:
        for i in range(MAX_CLIENT_LABELS + 10):
            reply = client.post(
                f"{url}/infill",
                json={"input_prefix": "x", "n_predict": 1},
                headers={"user-agent": f"agent{i}/1.0"},
            )
            assert reply.status_code == 200
        for i in range(10):
            assert client.request(f"BREW{i}", f"{url}/metrics").status_code == 405
    assert wait_for(lambda: requests_of(scrape(url), NO_ROUTE, OTHER, "405") == 10)
    samples = scrape(url)
    clients = {
        dict(labels)["client"] for name, labels in samples if name == "homefire_prompt_tokens_total"
    }
    assert len(clients) == MAX_CLIENT_LABELS + 1
    assert OTHER in clients
    methods = {
        dict(labels)["method"] for name, labels in samples if name.startswith("homefire_http")
    }
    assert methods <= {"GET", "POST", OTHER}
