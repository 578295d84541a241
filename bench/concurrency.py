"""Concurrent streamed clients: ``homefire serve`` beside llama.cpp's ``llama-server``.

The same workload against both, on the same model and threads, each server started fresh per
round, the two alternating (the machine may be shared: alternating spreads its noise over both;
each figure is the median over the rounds):

1. one client: four fixed prompts one after another, greedy, 128 tokens each
   (Homefire with ``engine.parallel`` 1 vs ``llama-server -np 1``);
2. four clients at once, the same four prompts (``engine.parallel`` 4 vs ``-np 4``);
3. autocomplete under load: a ~200-token code prompt asking for 16 tokens, sent alone and then
   while three long streams run (4 slots on both servers); its time to first token in both.

Both servers hold one unified KV cache of parallel × n_ctx cells with a full-size cache for
sliding-window layers (llama-server ``-c N*n_ctx -np N -kvu --swa-full``). llama-server is built
from the llama.cpp that the installed llama-cpp-python vendors (``bench/llama_server.py``, cached
in ~/.cache/homefire-bench/). Prints per request its TTFT and tokens, per scenario aggregate
tokens/s, and the ratios against the targets of issue 12:

- 4 clients: aggregate tok/s >= 1.0 × llama-server -np 4, every request complete;
- 1 client: decode tok/s >= 0.97 × llama-server -np 1;
- autocomplete under load: TTFT <= 2 × its TTFT alone.

    python bench/concurrency.py [MODEL.gguf] [--rounds N] [--threads N]
    (default: the starter model, 3 rounds, one thread per physical core)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx
from llama_server import llama_server
from serve_process import homefire_serve, starter_model

from app.core.engine.backend import default_threads

MAX_TOKENS = 128
N_CTX = 2048
PROMPTS = (
    "The history of the bicycle begins",
    "Once upon a time, in a small village by the sea,",
    "A recipe for bread: first,",
    "The three laws of motion are",
)
LONG_TOKENS = 384
AUTOCOMPLETE_TOKENS = 16
# About 200 tokens of code; the first line differs per use so no server reuses a cached prompt.
AUTOCOMPLETE_BODY = (
    "import json\nfrom dataclasses import dataclass\nfrom pathlib import Path\n\n\n"
    "@dataclass\nclass Invoice:\n    number: str\n    customer: str\n    lines: list[tuple[str, int, float]]\n\n"
    "    def total(self) -> float:\n        return sum(qty * price for _, qty, price in self.lines)\n\n"
    "    def to_json(self) -> str:\n        return json.dumps({'number': self.number, "
    "'customer': self.customer, 'total': self.total()})\n\n\n"
    "def load_invoices(folder: Path) -> list[Invoice]:\n    invoices = []\n"
    "    for path in sorted(folder.glob('*.json')):\n        raw = json.loads(path.read_text())\n"
    "        invoices.append(Invoice(raw['number'], raw['customer'], raw['lines']))\n"
    "    return invoices\n\n\ndef overdue(invoices: list[Invoice], days: int) -> list[Invoice]:\n"
    "    result = []\n    for invoice in invoices:\n        if "
)

Server = Callable[[int], AbstractContextManager[str]]


@dataclass(frozen=True)
class Outcome:
    tokens: int
    prompt_tokens: int
    finish: str
    ttft_s: float
    decode_s: float  # first token to last

    @property
    def decode_rate(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.tokens > 1 and self.decode_s else 0.0


def stream(
    url: str, prompt: str, max_tokens: int, first_token: threading.Event | None = None
) -> Outcome:
    body = {
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first = last = None
    chunks = tokens = prompt_tokens = 0
    finish = "truncated"
    with httpx.stream("POST", f"{url}/completions", json=body, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line.removeprefix("data: "))
            for choice in event.get("choices") or ():
                if choice.get("text"):
                    last = time.perf_counter()
                    if first is None:
                        first = last
                        if first_token is not None:
                            first_token.set()
                    chunks += 1
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
                prompt_tokens = event["usage"]["prompt_tokens"]
    first = first or time.perf_counter()
    return Outcome(
        tokens or chunks, prompt_tokens, finish, first - started, (last or first) - first
    )


def one_client(url: str) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    outcomes = [stream(url, p, MAX_TOKENS) for p in PROMPTS]
    return outcomes, time.perf_counter() - started


def four_clients(url: str) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        outcomes = list(pool.map(lambda p: stream(url, p, MAX_TOKENS), PROMPTS))
    return outcomes, time.perf_counter() - started


def autocomplete(url: str, round_no: int) -> tuple[Outcome, Outcome]:
    """(alone, while three long streams run) for one ~200-token completion request."""
    alone = stream(url, f"# alone {round_no}\n{AUTOCOMPLETE_BODY}", AUTOCOMPLETE_TOKENS)
    started = [threading.Event() for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        long = [pool.submit(stream, url, PROMPTS[i], LONG_TOKENS, started[i]) for i in range(3)]
        for event in started:
            event.wait(120)
        loaded = stream(url, f"# loaded {round_no}\n{AUTOCOMPLETE_BODY}", AUTOCOMPLETE_TOKENS)
        for future in long:
            future.result()
    return alone, loaded


@dataclass
class Runs:
    one_rate: list[float]
    one_decode: list[float]
    four_rate: list[float]
    ac_alone: list[float]
    ac_loaded: list[float]
    complete: bool = True


def run_server(name: str, server: Server, round_no: int, runs: Runs) -> None:
    with server(1) as url:
        stream(url, "Hello", 4)  # warm-up
        outcomes, wall = one_client(url)
    report(f"{name}, 1 client (round {round_no})", outcomes, wall)
    runs.one_rate.append(sum(o.tokens for o in outcomes) / wall)
    runs.one_decode.append(statistics.median(o.decode_rate for o in outcomes))
    runs.complete &= all(o.tokens == MAX_TOKENS or o.finish == "stop" for o in outcomes)
    with server(4) as url:
        stream(url, "Hello", 4)
        outcomes, wall = four_clients(url)
        report(f"{name}, 4 clients (round {round_no})", outcomes, wall)
        runs.four_rate.append(sum(o.tokens for o in outcomes) / wall)
        runs.complete &= all(o.tokens == MAX_TOKENS or o.finish == "stop" for o in outcomes)
        alone, loaded = autocomplete(url, round_no)
    print(
        f"  autocomplete ({alone.prompt_tokens} prompt tokens, {alone.tokens} tokens): "
        f"TTFT alone {alone.ttft_s:.3f} s, under 3 streams {loaded.ttft_s:.3f} s"
    )
    runs.ac_alone.append(alone.ttft_s)
    runs.ac_loaded.append(loaded.ttft_s)


def report(name: str, outcomes: list[Outcome], wall_s: float) -> None:
    total = sum(o.tokens for o in outcomes)
    print(f"\n{name}: {total} tokens in {wall_s:.2f} s = {total / wall_s:.1f} tok/s")
    for i, o in enumerate(outcomes):
        print(
            f"  request {i}: {o.tokens:3d} tokens ({o.finish}), TTFT {o.ttft_s:6.3f} s, "
            f"decode {o.decode_rate:5.1f} tok/s"
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    # On a machine others share, one thread per server avoids llama.cpp's threads spinning
    # against each other; both servers always get the same count.
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    threads = args.threads
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        model = args.model or starter_model(folder)

        def homefire(parallel: int) -> AbstractContextManager[str]:
            settings = {"engine": {"parallel": parallel, "n_threads": threads}}
            home = folder / f"home-{time.monotonic_ns()}"
            return homefire_serve(model, home, N_CTX, settings)

        def llama(parallel: int) -> AbstractContextManager[str]:
            return llama_server(model, N_CTX, parallel, threads)

        servers: dict[str, Server] = {"homefire": homefire, "llama-server": llama}
        print(
            f"model {model.name}, {threads} threads, n_ctx {N_CTX} per slot, greedy, "
            f"{MAX_TOKENS} tokens per request, {args.rounds} rounds alternating"
        )
        runs = {name: Runs([], [], [], [], []) for name in servers}
        for round_no in range(1, args.rounds + 1):
            order = list(servers) if round_no % 2 else list(reversed(servers))
            for name in order:
                run_server(name, servers[name], round_no, runs[name])
    hf, ls = runs["homefire"], runs["llama-server"]
    med = statistics.median
    print(f"\nmedians over {args.rounds} rounds (Homefire / llama-server):")
    print(
        f"  1 client aggregate: {med(hf.one_rate):.1f} / {med(ls.one_rate):.1f} tok/s "
        f"= {med(hf.one_rate) / med(ls.one_rate):.3f}"
    )
    print(
        f"  1 client decode:    {med(hf.one_decode):.1f} / {med(ls.one_decode):.1f} tok/s "
        f"= {med(hf.one_decode) / med(ls.one_decode):.3f} (target >= 0.97)"
    )
    print(
        f"  4 clients aggregate: {med(hf.four_rate):.1f} / {med(ls.four_rate):.1f} tok/s "
        f"= {med(hf.four_rate) / med(ls.four_rate):.3f} (target >= 1.0)"
    )
    for name, r in runs.items():
        print(
            f"  {name} autocomplete TTFT: alone {med(r.ac_alone):.3f} s, under load "
            f"{med(r.ac_loaded):.3f} s = {med(r.ac_loaded) / med(r.ac_alone):.2f}× "
            f"(Homefire target <= 2)"
        )
    complete = hf.complete and ls.complete
    print(f"  every request complete (128 tokens or the model's own stop): {complete}")
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
