"""Switching models: time to first token for a model that must load first, beside the same
request to a loaded model, and the memory the loaded models take against the pool's budget.

Runs the services in-process with the real HTTP endpoint over two library models: the starter
model and a second copy of it under another name (a different file, so a different model to
the pool). Each run unloads both, streams a short completion from the first (load + prompt),
then the same request again (loaded), then the second model (load + prompt, two now loaded).
Prints medians and the ratio cold ÷ warm; every figure is measured unless it says estimated.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from serve_process import starter_model

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MAX_TOKENS = 8
N_CTX = 2048
PROMPT = "The quick brown fox"

CLIENT = httpx.Client(
    timeout=300,
    transport=httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]),
)


def first_token_s(url: str, model: str) -> float:
    """Seconds from sending a streamed completion to its first text chunk (measured)."""
    body = {
        "model": model,
        "prompt": PROMPT,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": True,
    }
    started = time.perf_counter()
    with CLIENT.stream("POST", f"{url}/v1/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["text"]:
                return time.perf_counter() - started
    raise RuntimeError(f"{model} streamed no text")


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="homefire-bench-switch-"))
    os.environ["HOMEFIRE_HOME"] = str(root / "home")
    from app.core.server.app import ServerConfig
    from app.core.services import AppServices
    from app.core.storage.paths import AppPaths
    from app.core.storage.settings import Settings, SettingsStore

    folder = root / "models"
    folder.mkdir()
    first = starter_model(root)
    shutil.copy(first, folder / "switch-a.gguf")
    shutil.copy(first, folder / "switch-b.gguf")
    settings = Settings(model_folders=[str(folder)])
    settings.engine.n_ctx = N_CTX
    settings.engine.keep_alive_s = -1  # only this benchmark unloads
    paths = AppPaths.from_env()
    paths.ensure()
    SettingsStore(paths.settings_file).save(settings)
    services = AppServices.create(paths)
    try:
        url = services.start_server(ServerConfig(port=0)).url
        pool = services.pool
        first_token_s(url, "switch-b")  # llama.cpp's one-time start-up, outside the runs
        cold: list[float] = []
        warm: list[float] = []
        second: list[float] = []
        memory: list[int] = []
        for _ in range(RUNS):
            for name in ("switch-a", "switch-b"):
                pool.unload(name).result()
            cold.append(first_token_s(url, "switch-a"))
            warm.append(first_token_s(url, "switch-a"))
            second.append(first_token_s(url, "switch-b"))
            loaded = pool.models()
            assert {m.name for m in loaded} == {"switch-a", "switch-b"}, loaded
            memory.append(sum(m.memory_bytes for m in loaded))
        budget = services.settings.engine
        import psutil

        available = psutil.virtual_memory().available
        print(f"model: starter (Gemma 3 270M Q4_K_M), two copies, context {N_CTX}, {RUNS} runs")
        rows = (
            ("model unloaded (load + prompt)", cold),
            ("model loaded", warm),
            ("second model (load + prompt)", second),
        )
        for label, times in rows:
            print(f"time to first token, {label:<31} {statistics.median(times):.3f} s (measured)")
        print(f"cold ÷ warm: {statistics.median(cold) / statistics.median(warm):.1f}× (measured)")
        for model in pool.models():
            kind = "measured" if model.memory_measured else "estimated"
            print(f"  {model.name}: {mib(model.memory_bytes)} ({kind} over its load)")
        print(
            f"two models loaded: {mib(statistics.median(memory))} (measured over their loads); "
            f"the pool's budget for more: {mib(available - budget.memory_margin_mb * 2**20)} = "
            f"RAM available now {mib(available)} (measured) - {budget.memory_margin_mb} MiB margin"
        )
    finally:
        services.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
