"""Serving the starter model split onto real ``homefire worker`` processes, over real HTTP.

A worker killed mid-request fails that request with a 502 in its dialect's error shape; the
server keeps answering, the model is unloaded, and a reload without that worker serves again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from app.core.load_options import LoadOptions
from app.core.server.app import ServerConfig
from app.core.services import AppServices
from tests.fixtures.rpc_workers import WorkerProcess, require_rpc, workers
from tests.server.conftest import TokenCounter, base_url

pytestmark = pytest.mark.real_model

MODEL = "gemma-split"
# Counting goes on far past the moment the worker is killed, on any CPU.
COUNTING_PROMPT = "1, 2, 3, 4, 5, 6,"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[WorkerProcess]]:
    require_rpc()
    with workers(tmp_path_factory.mktemp("workers"), 2) as started:
        yield started


def _load(services: AppServices, model: Path, worker_addresses: list[str]) -> None:
    options = LoadOptions(
        model, n_ctx=512, parallel=1, n_threads=1, model_id=MODEL, workers=tuple(worker_addresses)
    )
    services.settings.engine.parallel = 1  # the pool's load fills in the settings' slots
    services.load_model(services.library.resolve(str(model)), options)


def _kill_once_generating(counter: TokenCounter, worker: WorkerProcess) -> threading.Thread:
    def kill() -> None:
        with counter.changed:
            counter.changed.wait_for(lambda: counter.current > 0, 180)
        worker.kill()

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


def test_a_lost_worker_is_a_502_in_each_dialect_and_the_server_serves_on_after_a_reload(
    starter_model: Path, pair: list[WorkerProcess], tmp_path: Path
) -> None:
    services = AppServices.create()
    try:
        counter = TokenCounter()
        services.pool.add_observer(counter)
        services.start_server(ServerConfig(port=0))
        url = base_url(services)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=180)

        with workers(tmp_path / "a", 1) as (doomed,):
            _load(services, starter_model, [doomed.address, pair[0].address])
            killer = _kill_once_generating(counter, doomed)
            with pytest.raises(openai.APIStatusError) as caught:
                client.completions.create(
                    model=MODEL, prompt=COUNTING_PROMPT, max_tokens=400, temperature=0
                )
            killer.join()
        assert caught.value.status_code == 502
        error = caught.value.response.json()["error"]
        assert error["code"] == "worker_lost"
        assert error["type"] == "server_error"
        assert doomed.address in error["message"]

        # The server answers on; the model is gone rather than half there (it was loaded from
        # a file outside the library, so its name now names no model).
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 200
        assert MODEL not in [m["model"] for m in health.json()["models"]]
        gone = httpx.post(
            f"{url}/v1/completions", json={"model": MODEL, "prompt": "Hi"}, timeout=30
        )
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "model_not_found"

        with workers(tmp_path / "b", 1) as (doomed,):
            _load(services, starter_model, [pair[0].address, doomed.address])
            killer = _kill_once_generating(counter, doomed)
            reply = httpx.post(
                f"{url}/api/generate",
                json={
                    "model": MODEL,
                    "prompt": COUNTING_PROMPT,
                    "stream": False,
                    "options": {"num_predict": 400, "temperature": 0},
                },
                timeout=180,
            )
            killer.join()
        assert reply.status_code == 502
        assert doomed.address in reply.json()["error"]  # Ollama's shape: {"error": "..."}

        _load(services, starter_model, [pair[0].address, pair[1].address])
        done = client.completions.create(model=MODEL, prompt="Hello", max_tokens=4, temperature=0)
        assert done.usage is not None
        assert 0 < done.usage.completion_tokens <= 4
    finally:
        services.close()


def test_serve_with_workers_reports_their_memory_and_serves(
    starter_model: Path, pair: list[WorkerProcess], homefire_home: Path
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--model",
            str(starter_model),
            "--port",
            "0",
            "--ctx",
            "256",
            *(arg for worker in pair for arg in ("--worker", worker.address)),
        ],
        env={**os.environ, "HOMEFIRE_HOME": str(homefire_home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Serving "), line
        url = line.rsplit(" at ", 1)[1].strip()
        client = openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=120)
        model_id = line.split()[1]
        reply = client.completions.create(
            model=model_id, prompt="Hello", max_tokens=4, temperature=0
        )
        assert reply.usage is not None
        assert 0 < reply.usage.completion_tokens <= 4
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    assert process.stderr is not None
    stderr = process.stderr.read()
    for worker in pair:
        assert f"Worker {worker.address}: " in stderr
        assert " free of " in stderr


def test_serve_refuses_an_unreachable_worker_before_loading(
    tiny_model: Path, homefire_home: Path
) -> None:
    require_rpc()
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--model",
            str(tiny_model),
            "--port",
            "0",
            "--worker",
            f"127.0.0.1:{closed}",
        ],
        env={**os.environ, "HOMEFIRE_HOME": str(homefire_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"worker 127.0.0.1:{closed} cannot be reached" in result.stderr
    assert "Serving" not in result.stdout
