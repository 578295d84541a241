"""Concurrent streamed clients against ``homefire serve``, measured against the engine alone.

Four different prompts, greedy (so every run decodes the same tokens), streamed:

1. in-process: the engine directly, one request after another (no HTTP);
2. one client: the same four through ``homefire serve``, one after another;
3. four clients at once through ``homefire serve`` (queued FIFO by the engine).

Prints per request its latency (first byte sent to last byte received), its tokens and finish
reason, then each scenario's aggregate tokens/s (all tokens ÷ wall time) and the ratios.
Targets (issue 7): every request complete (same token count as in-process, ending in
"length"/"stop", never cut short) and 4-client aggregate tokens/s >= one client's.

    python bench/concurrency.py [MODEL.gguf]      (default: the starter model)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from serve_process import homefire_serve, starter_model

MAX_TOKENS = 96
N_CTX = 2048
PROMPTS = (
    "The history of the bicycle begins",
    "def quicksort(items):",
    "A recipe for bread: first,",
    "The three laws of motion are",
)


@dataclass(frozen=True)
class Outcome:
    prompt: int
    tokens: int
    finish: str
    latency_s: float


def in_process(model: Path) -> list[Outcome]:
    from app.core.engine.engine import Engine
    from app.core.engine.request import GenerationRequest, Sampling
    from app.core.load_options import LoadOptions

    engine = Engine()
    try:
        engine.load(LoadOptions(model_path=model, n_ctx=N_CTX)).result()
        outcomes = []
        for i, prompt in enumerate(PROMPTS):
            started = time.perf_counter()
            request = GenerationRequest(
                prompt=prompt, max_tokens=MAX_TOKENS, sampling=Sampling(temperature=0.0)
            )
            result = engine.generate(request).result()
            outcomes.append(
                Outcome(
                    i, result.completion_tokens, result.finish_reason, time.perf_counter() - started
                )
            )
        return outcomes
    finally:
        engine.close()


def stream_one(url: str, i: int) -> Outcome:
    body = {
        "prompt": PROMPTS[i],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    tokens = 0
    finish = "truncated"  # stays so unless a finish_reason and [DONE] arrive
    saw_finish = None
    with httpx.stream("POST", f"{url}/completions", json=body, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line == "data: [DONE]":
                finish = saw_finish or "truncated"
            elif line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                if event["choices"] and event["choices"][0]["finish_reason"]:
                    saw_finish = event["choices"][0]["finish_reason"]
                if event.get("usage"):
                    tokens = event["usage"]["completion_tokens"]
    return Outcome(i, tokens, finish, time.perf_counter() - started)


def run_scenario(url: str, clients: int) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    if clients == 1:
        outcomes = [stream_one(url, i) for i in range(len(PROMPTS))]
    else:
        with ThreadPoolExecutor(clients) as pool:
            outcomes = list(pool.map(lambda i: stream_one(url, i), range(len(PROMPTS))))
    return outcomes, time.perf_counter() - started


def report(name: str, outcomes: list[Outcome], wall_s: float) -> float:
    total = sum(o.tokens for o in outcomes)
    rate = total / wall_s
    print(f"\n{name}: {total} tokens in {wall_s:.2f} s = {rate:.1f} tok/s (measured)")
    for o in outcomes:
        print(
            f"  request {o.prompt}: {o.tokens:3d} tokens, {o.finish:9s} latency {o.latency_s:6.2f} s"
        )
    return rate


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        model = Path(sys.argv[1]) if len(sys.argv) > 1 else starter_model(folder)
        print(f"model {model.name}, {MAX_TOKENS} tokens per request, greedy, n_ctx {N_CTX}")
        started = time.perf_counter()
        baseline = in_process(model)
        base_rate = report("in-process engine, sequential", baseline, time.perf_counter() - started)
        with homefire_serve(model, folder / "home", N_CTX) as url:
            stream_one(url, 0)  # warm-up
            one, one_wall = run_scenario(url, 1)
            one_rate = report("homefire serve, 1 client, sequential", one, one_wall)
            four, four_wall = run_scenario(url, 4)
            four_rate = report("homefire serve, 4 concurrent clients", four, four_wall)
    expected = {o.prompt: o.tokens for o in baseline}
    complete = all(
        o.tokens == expected[o.prompt] and o.finish in ("length", "stop") for o in one + four
    )
    print(f"\n4 clients / 1 client aggregate: {four_rate / one_rate:.3f} (target >= 1.0, measured)")
    print(f"4 clients / in-process:          {four_rate / base_rate:.3f} (measured)")
    print(f"all requests complete (same tokens as in-process, no truncation): {complete}")
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
