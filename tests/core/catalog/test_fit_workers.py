"""``homefire fit --worker``: plans with a real ``homefire worker`` on 127.0.0.1 and its memory."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import run
from tests.fixtures.gguf_writer import write_tiny_model
from tests.fixtures.rpc_workers import require_rpc, workers


@pytest.fixture(scope="module")
def worker_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real `homefire worker` on 127.0.0.1 for the module's tests."""
    require_rpc()
    with workers(tmp_path_factory.mktemp("worker-home"), 1) as (worker,):
        yield worker.address


def test_fit_plans_with_a_live_workers_reported_memory(
    worker_address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf", n_layers=4)
    argv = ["fit", str(path), "--profile", "CPU only 32GB DDR5", "--worker", worker_address]
    assert run([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    here, worker = data["cluster"]["members"]
    assert here["role"] == "here"
    assert worker["role"] == "worker"
    assert worker["name"] == worker_address
    assert worker["memory_bytes"] > 0
    assert worker["memory_basis"].startswith("reported free by the worker")
    (variant,) = data["variants"]
    assert variant["cluster"]["verdict"] in ("fits", "tight")
    split = variant["split"]
    assert [s["member"] for s in split] == ["CPU only 32GB DDR5", worker_address]
    assert sum(s["n_layers"] for s in split) == 4
    assert split[-1]["output_layer"]
    # A worker reports memory, not bandwidth: no speed, and the plan says whose figure is missing.
    assert variant["cluster"]["tokens_per_s"] is None
    assert worker_address in variant["cluster"]["tokens_per_s_basis"]
    assert data["cluster_note"] is None

    assert run(argv) == 0
    out = capsys.readouterr().out
    assert f"across 2 machines: CPU only 32GB DDR5 + {worker_address}" in out


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_worker_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf")
    address = f"127.0.0.1:{_closed_port()}"
    assert run(["fit", str(path), "--profile", "CPU only 32GB DDR5", "--worker", address]) == 1
    err = capsys.readouterr().err.strip()
    assert address in err
    assert len(err.splitlines()) == 1


def test_a_bad_worker_address_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["fit", "qwen3-8b", "--profile", "CPU only 32GB DDR5", "--worker", "no port:x"]) == 1
    err = capsys.readouterr().err.strip()
    assert "worker address" in err
    assert len(err.splitlines()) == 1


def test_settings_workers_that_cannot_be_probed_leave_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.core.storage.paths import AppPaths
    from app.core.storage.settings import SettingsStore

    paths = AppPaths.from_env()
    paths.ensure()
    store = SettingsStore(paths.settings_file)
    settings = store.load()
    address = f"127.0.0.1:{_closed_port()}"
    settings.engine.workers = [address]
    store.save(settings)
    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf")
    assert run(["fit", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cluster"] is None
    assert data["cluster_note"].startswith("workers in settings not planned with: ")
    assert address in data["cluster_note"]
