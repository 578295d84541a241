"""Endpoint speed against the engine it wraps, measured in the same run.

Streams the same 128-token completion (greedy, so every run decodes the same tokens) through
``homefire serve`` (with and without the usage ledger) and through llama-cpp-python in this
process, alternating runs, and prints decode tokens/s, time to first token and the ratios.
Targets: endpoint ÷ in-process >= 0.98 (issue 2); the ledger costs < 1% (issue 6).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from serve_process import homefire_serve, starter_model

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MAX_TOKENS = 128
N_CTX = 2048
PROMPT = "The quick brown fox"


# One keep-alive connection with TCP_NODELAY, as IDE clients (Node's http) use: a new httpx
# client per request spends ~20 ms on set-up, and Nagle's algorithm on the client socket would
# hold the request body back for a delayed ACK; neither is the endpoint's time.
CLIENT = httpx.Client(
    timeout=120,
    transport=httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]),
)


def stream_endpoint(url: str) -> tuple[float, float, int]:
    body = {"prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0, "stream": True}
    started = time.perf_counter()
    stamps: list[float] = []
    with CLIENT.stream("POST", f"{url}/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["text"]:
                stamps.append(time.perf_counter())
    return rates(started, stamps)


def stream_in_process(llm: object) -> tuple[float, float, int]:
    started = time.perf_counter()
    stamps: list[float] = []
    for chunk in llm.create_completion(  # type: ignore[attr-defined]
        PROMPT, max_tokens=MAX_TOKENS, temperature=0, stream=True
    ):
        if chunk["choices"][0]["text"]:
            stamps.append(time.perf_counter())
    return rates(started, stamps)


def rates(started: float, stamps: list[float]) -> tuple[float, float, int]:
    """(decode tokens/s after the first, time to first token in s, chunks)"""
    decode = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    return decode, stamps[0] - started, len(stamps)


def main() -> int:
    from llama_cpp import Llama

    from app.core.engine.backend import default_threads

    threads = default_threads()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = starter_model(root)
        llm = Llama(
            str(model), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads, verbose=False
        )
        results: dict[str, list[tuple[float, float, int]]] = {
            "in-process": [],
            "endpoint": [],
            "endpoint, no ledger": [],
        }
        with (
            homefire_serve(model, root / "a", N_CTX, {"usage": {"record": True}}) as url,
            homefire_serve(model, root / "b", N_CTX, {"usage": {"record": False}}) as bare,
        ):
            for _label, run in (("in-process", lambda: stream_in_process(llm)),
                               ("endpoint", lambda: stream_endpoint(url)),
                               ("endpoint, no ledger", lambda: stream_endpoint(bare))):  # fmt: skip
                run()  # warm-up: page in the weights, fill caches
            for _ in range(RUNS):
                results["in-process"].append(stream_in_process(llm))
                results["endpoint"].append(stream_endpoint(url))
                results["endpoint, no ledger"].append(stream_endpoint(bare))
    print(f"starter model (Gemma 3 270M Q4_K_M), {MAX_TOKENS}-token streamed completion, "
          f"{threads} threads, median of {RUNS} alternating runs")  # fmt: skip
    medians = {}
    for label, runs in results.items():
        decode = statistics.median(r[0] for r in runs)
        ttft = statistics.median(r[1] for r in runs)
        medians[label] = decode
        print(f"  {label:22s} decode {decode:6.1f} tok/s   time to first token {ttft * 1000:6.1f} ms   "
              f"chunks {runs[0][2]}")  # fmt: skip
    ratio = medians["endpoint"] / medians["in-process"]
    ledger = medians["endpoint"] / medians["endpoint, no ledger"]
    print(f"  ratio endpoint / in-process llama-cpp-python: {ratio:.3f} (target >= 0.98)")
    print(f"  ratio endpoint with ledger / without: {ledger:.3f} (target >= 0.99)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
