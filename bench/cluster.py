"""What pooling machines costs: the starter model here alone, then split onto 1 and 2 workers.

The workers are real ``homefire worker`` processes on 127.0.0.1 (CPU backend), so what is
measured is the RPC protocol and the process boundary, not a network link: a real LAN adds its
latency to every decode step. Runs alternate between the three set-ups; each streams the same
greedy 64-token completion through the engine and records decode tokens/s and time to first
token. Prints medians and the ratios against local-only, all measured in this run.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from serve_process import starter_model

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MAX_TOKENS = 64
N_CTX = 512
PROMPT = "1, 2, 3, 4, 5, 6,"  # greedy counting: every run decodes all 64 tokens


@contextmanager
def worker_processes(count: int, home: Path) -> Iterator[list[str]]:
    env = {**os.environ, "HOMEFIRE_HOME": str(home)}
    started: list[subprocess.Popen[str]] = []
    addresses: list[str] = []
    try:
        for _ in range(count):
            process = subprocess.Popen(
                [sys.executable, "-m", "app", "worker", "--port", "0", "--no-cache"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            started.append(process)
            assert process.stdout is not None
            for line in process.stdout:
                match = re.search(r"Worker listening at (\S+)", line)
                if match:
                    addresses.append(match.group(1))
                    break
            else:
                raise RuntimeError("homefire worker did not start")
        yield addresses
    finally:
        for process in started:
            process.terminate()
            process.wait(30)


def measure(model: Path, workers: list[str]) -> tuple[float, float]:
    """(decode tokens/s after the first token, time to first token in s) of one load."""
    from app.core.cluster.loader import backend_factory
    from app.core.engine.engine import Engine
    from app.core.engine.request import GenerationRequest, Sampling
    from app.core.load_options import LoadOptions

    engine = Engine(backend_factory=backend_factory())
    try:
        options = LoadOptions(model, n_ctx=N_CTX, parallel=1, workers=tuple(workers))
        engine.load(options).result(timeout=300)
        request = GenerationRequest(prompt=PROMPT, max_tokens=MAX_TOKENS, sampling=Sampling(0.0))
        stamps: list[float] = []
        started = time.perf_counter()
        result = engine.generate(
            request, on_chunk=lambda _text: stamps.append(time.perf_counter())
        ).result(timeout=300)
        if result.completion_tokens < MAX_TOKENS // 2:
            raise RuntimeError(f"only {result.completion_tokens} tokens: nothing to measure")
        return (len(stamps) - 1) / (stamps[-1] - stamps[0]), stamps[0] - started
    finally:
        engine.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = starter_model(root)
        with worker_processes(2, root) as addresses:
            setups = {
                "local only": [],
                "local + 1 worker": addresses[:1],
                "local + 2 workers": addresses,
            }
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in setups}
            measure(model, [])  # warm the page cache and the fork server
            for _ in range(RUNS):
                for name, workers in setups.items():
                    results[name].append(measure(model, workers))
    base_decode = statistics.median(r[0] for r in results["local only"])
    base_ttft = statistics.median(r[1] for r in results["local only"])
    print(f"starter model, {MAX_TOKENS} greedy tokens, median of {RUNS} runs (measured)")
    print(
        f"{'set-up':<20} {'decode tok/s':>13} {'TTFT ms':>9} {'decode ratio':>13} {'TTFT ratio':>11}"
    )
    for name, runs in results.items():
        decode = statistics.median(r[0] for r in runs)
        ttft = statistics.median(r[1] for r in runs)
        print(
            f"{name:<20} {decode:>13.1f} {ttft * 1000:>9.1f} {decode / base_decode:>13.2f}"
            f" {ttft / base_ttft:>11.2f}"
        )
    print("workers on 127.0.0.1: a LAN adds its round-trip time to every token (not measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
