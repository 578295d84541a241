"""schemathesis over the endpoint's own OpenAPI schema, both dialects, on a tiny GGUF.

Every operation FastAPI describes (the OpenAI routes under ``/v1``, the Ollama routes under
``/api``) gets generated requests, valid and not, over real HTTP on 127.0.0.1. Each case must
answer below 500 within a bounded time, and ``/health`` must answer after every case. The
number of cases comes from the Hypothesis profile: small in CI, larger under ``make fuzz``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app.core.load_options import LoadOptions
from app.core.server.app import ServerConfig
from app.core.services import AppServices
from app.core.storage.paths import HOME_ENV, AppPaths

pytestmark = pytest.mark.fuzz

# A hang guard per case, not a speed promise. The slowest legitimate case is a reply that runs
# to the end of the tiny model's context with extreme sampling values, on a busy machine.
CASE_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[str]:
    home = tmp_path_factory.mktemp("fuzz-home")
    services = AppServices.create(AppPaths.from_env({HOME_ENV: str(home)}))
    try:
        services.engine.load(LoadOptions(model_path=tiny_model, n_ctx=256, seed=3)).result()
        runner = services.start_server(ServerConfig(port=0))
        yield runner.url
    finally:
        services.close()


def test_no_request_in_either_dialect_gets_a_5xx_or_stops_the_health_check(
    endpoint: str,
) -> None:
    schema = schemathesis.openapi.from_url(f"{endpoint}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    # Both dialects are in the schema, so both are fuzzed.
    assert {"POST /v1/chat/completions", "POST /api/chat", "POST /api/embed"} <= labels
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(deadline=None, suppress_health_check=list(HealthCheck))
        def answers_below_500(case: schemathesis.Case) -> None:
            response = case.call(base_url=endpoint, timeout=CASE_TIMEOUT_S)
            label = f"{case.method} {case.path}"
            assert response.status_code < 500, (label, response.text[:500])
            health = httpx.get(f"{endpoint}/health", timeout=CASE_TIMEOUT_S)
            assert health.json()["status"] == "ok", label

        answers_below_500()
