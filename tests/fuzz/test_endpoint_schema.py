"""schemathesis over the endpoint's own OpenAPI schema, every dialect, on a tiny coder GGUF.

Every operation FastAPI describes (the OpenAI and Anthropic routes under ``/v1``, the Ollama
routes under ``/api``, llama.cpp's ``/infill``, ``/metrics``) gets generated requests, valid
and not, over real HTTP on 127.0.0.1. Each case must answer below 500 within a bounded time,
and ``/health`` must answer after every case. The number of cases comes from the Hypothesis
profile: small in CI, larger under ``make fuzz``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app.core.load_options import LoadOptions
from app.core.server.app import ServerConfig
from app.core.services import AppServices
from app.core.storage.paths import HOME_ENV, AppPaths
from tests.server.tiny_coder import write_tiny_coder

pytestmark = pytest.mark.fuzz

# Each case is a real HTTP request and may run a generation: a fifth of the profile's budget
# per operation (8 in CI, 400 under `make fuzz`).
EXAMPLES_PER_OPERATION = max(1, settings.default.max_examples // 5)

# A hang guard per case, not a speed promise. The slowest legitimate case is a reply that runs
# to the end of the tiny model's context with extreme sampling values, on a busy machine.
CASE_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("fuzz-home")
    # A coder model: FIM tokens, so /infill generates, and a template that renders tools.
    model = write_tiny_coder(tmp_path_factory.mktemp("models") / "tiny-coder.gguf")
    services = AppServices.create(AppPaths.from_env({HOME_ENV: str(home)}))
    try:
        services.load_model(
            services.library.resolve(str(model)),
            LoadOptions(model_path=model, n_ctx=256, seed=3),
        )
        runner = services.start_server(ServerConfig(port=0))
        yield runner.url
    finally:
        services.close()


@pytest.fixture(scope="module")
def api_schema(endpoint: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{endpoint}/openapi.json")


# Named here so each operation is its own test (its own report and timeout); the first test
# proves the list is exactly what the live schema describes.
OPERATIONS = [
    "GET /health",
    "GET /v1/models",
    "GET /v1/models/{model_id}",
    "POST /v1/chat/completions",
    "POST /v1/completions",
    "POST /v1/embeddings",
    "POST /v1/messages",
    "POST /v1/messages/count_tokens",
    "POST /v1/responses",
    "GET /api/version",
    "GET /api/tags",
    "GET /api/ps",
    "POST /api/show",
    "POST /api/chat",
    "POST /api/generate",
    "POST /api/embed",
    "POST /api/embeddings",
    "POST /infill",
    "GET /metrics",
]


def test_every_operation_of_both_dialects_is_fuzzed(api_schema: schemathesis.BaseSchema) -> None:
    described = [result.ok().label for result in api_schema.get_all_operations()]
    assert sorted(described) == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_request_gets_a_5xx_or_stops_the_health_check(
    api_schema: schemathesis.BaseSchema, endpoint: str, label: str
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_below_500(case: schemathesis.Case) -> None:
        response = case.call(base_url=endpoint, timeout=CASE_TIMEOUT_S)
        assert response.status_code < 500, response.text[:500]
        health = httpx.get(f"{endpoint}/health", timeout=CASE_TIMEOUT_S)
        assert health.json()["status"] == "ok"

    answers_below_500()
