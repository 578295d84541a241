"""The endpoint's Prometheus metrics, ``GET /metrics``, in one registry per app: two servers in
one process never share a count.

Requests, tokens and speeds are counted from the request log's records, which the RequestLogger
guard makes for every request (its route, status, client and the usage its route noted). The
served models, their memory and the engine's queue are read when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.requests import HTTPConnection

from app.core.server.dialects import Served
from app.core.server.request_log import RequestRecord

# The route label of requests no route handled: no route matched (whatever path a client sent,
# one value), or a guard answered first (no key, a foreign Host or Origin, a body too large).
NO_ROUTE = "none"
# Label values clients choose (their User-Agent names them, their request line the method) are
# kept to a few: each value is a series held for the server's life, and a client sending a new
# User-Agent with every request must not grow the registry without end.
MAX_CLIENT_LABELS = 64
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"
# From a cached keystroke's prompt (tens of ms) to a long prompt on a CPU (a minute).
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# From a large model on a CPU to a small one on a GPU.
DECODE_SPEED_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 35.0, 50.0, 75.0, 100.0, 150.0, 250.0, 500.0)


class EndpointMetrics:
    def __init__(self, served: Callable[[], list[Served]]) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "homefire_http_requests",
            "HTTP requests answered, by route (its template), method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._prompt_tokens = Counter(
            "homefire_prompt_tokens",
            "Prompt tokens of endpoint requests, as their usage reported, by model and client",
            ["model", "client"],
            registry=self.registry,
        )
        self._completion_tokens = Counter(
            "homefire_completion_tokens",
            "Generated tokens of endpoint requests, as their usage reported, by model and client",
            ["model", "client"],
            registry=self.registry,
        )
        self._first_token = Histogram(
            "homefire_time_to_first_token_seconds",
            "Measured from a generation's start on the engine to its first token, by model",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self._decode_speed = Histogram(
            "homefire_decode_tokens_per_second",
            "Measured tokens per second after the first token, per generation, by model",
            ["model"],
            buckets=DECODE_SPEED_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ServedModels(served))
        self._clients: set[str] = set()

    def record(self, record: RequestRecord) -> None:
        """Count one answered request (the RequestLogger calls this after its last byte)."""
        route = record.route or NO_ROUTE
        method = record.method if record.method in METHODS else OTHER
        self._requests.labels(route, method, str(record.status)).inc()
        model = record.model  # only ever a served model's id
        if model is None:
            return
        client = self._client_label(record.client)
        if record.prompt_tokens is not None:
            self._prompt_tokens.labels(model, client).inc(record.prompt_tokens)
        if record.completion_tokens is not None:
            self._completion_tokens.labels(model, client).inc(record.completion_tokens)
        if record.time_to_first_token_s is not None:
            self._first_token.labels(model).observe(record.time_to_first_token_s)
        if record.decode_tokens_per_s is not None:
            self._decode_speed.labels(model).observe(record.decode_tokens_per_s)

    def _client_label(self, client: str) -> str:
        # Called on the server's event loop only, so the set needs no lock.
        if client not in self._clients and len(self._clients) >= MAX_CLIENT_LABELS:
            return OTHER
        self._clients.add(client)
        return client

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _ServedModels(Collector):
    """The loaded models and their engine's slots, read at each scrape."""

    def __init__(self, served: Callable[[], list[Served]]) -> None:
        self._served = served

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, documentation: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, documentation, labels=["model"])

        loaded = gauge("homefire_model_loaded", "1 for each model loaded now")
        size = gauge("homefire_model_file_bytes", "Size of the loaded model's GGUF file")
        memory = gauge(
            "homefire_model_memory_bytes",
            "Resident memory the model's load added, measured when it loaded",
        )
        context = gauge("homefire_model_context_tokens", "The loaded context window, in tokens")
        slots = gauge("homefire_sequence_slots", "Sequence slots: requests decoded together")
        active = gauge("homefire_active_sequences", "Requests being read or decoded now")
        queued = gauge("homefire_queued_requests", "Requests waiting for a free slot (queue depth)")
        for served in self._served():
            info, usage = served.info, served.engine.slot_usage
            label = [info.model_id]
            loaded.add_metric(label, 1)
            size.add_metric(label, info.size_bytes)
            if info.rss_growth_bytes is not None:
                memory.add_metric(label, max(info.rss_growth_bytes, 0))
            context.add_metric(label, info.n_ctx)
            slots.add_metric(label, usage.slots)
            active.add_metric(label, usage.active)
            queued.add_metric(label, usage.queued)
        yield from (loaded, size, memory, context, slots, active, queued)


def note_route(connection: HTTPConnection) -> None:
    """The matched route's template, for the request's record (an app-wide dependency, so a
    websocket too): a label with a few values, unlike the paths clients send."""
    route = connection.scope.get("route")
    connection.state.route = str(getattr(route, "path", ""))


router = APIRouter()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    endpoint_metrics: EndpointMetrics = request.app.state.metrics
    return Response(endpoint_metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
