"""``WorkerProcess``: the app's ``homefire worker`` child, started, read, probed and stopped."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from app.core.cluster.worker import probe_worker
from app.core.cluster.worker_process import WorkerProcess, homefire_command, worker_command
from app.core.errors import WorkerError
from app.core.services import AppServices
from tests.fixtures.rpc_workers import REPO, require_rpc

FAILURE_DEADLINE_S = 30.0


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOMEFIRE_HOME": str(home), "PYTHONPATH": str(REPO)}


def test_the_command_is_this_interpreter_from_source_and_the_executable_when_frozen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert homefire_command(["worker"]) == [sys.executable, "-m", "app", "worker"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert worker_command("0.0.0.0", 50052, trust_network=True) == [
        sys.executable,
        "worker",
        "--host",
        "0.0.0.0",
        "--port",
        "50052",
        "--trust-network",
    ]


def test_a_started_worker_says_where_it_listens_answers_a_probe_and_stops(
    tmp_path: Path,
) -> None:
    require_rpc()
    command = worker_command("127.0.0.1", 0, extra=["--no-cache", "--threads", "1"])
    worker = WorkerProcess(command, env=_env(tmp_path))
    try:
        address = worker.start()
        assert address.host == "127.0.0.1"
        assert address.port > 0
        assert worker.running
        assert worker.shared  # one line per shared device
        memory = probe_worker(address)
        assert memory.total_bytes > 0
    finally:
        code = worker.stop()
    assert code == 0  # SIGTERM is the worker's clean stop
    assert not worker.running
    with pytest.raises(WorkerError):
        probe_worker(address, timeout_s=2.0)


def test_a_worker_that_cannot_start_is_an_error_in_its_own_words(tmp_path: Path) -> None:
    # All interfaces without the user's confirmation: the worker refuses and exits.
    command = worker_command("0.0.0.0", 0)
    worker = WorkerProcess(command, env=_env(tmp_path))
    with pytest.raises(WorkerError, match="--trust-network"):
        worker.start(FAILURE_DEADLINE_S)
    assert not worker.running
    assert worker.exit_code == 1


def test_a_busy_port_is_an_error_in_bounded_time(tmp_path: Path) -> None:
    require_rpc()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        command = worker_command("127.0.0.1", port, extra=["--no-cache", "--threads", "1"])
        worker = WorkerProcess(command, env=_env(tmp_path))
        with pytest.raises(WorkerError, match="could not listen"):
            worker.start(FAILURE_DEADLINE_S)
    assert not worker.running


def test_the_app_services_own_the_shared_worker_and_stop_it_when_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_rpc()
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the child imports this checkout's app
    services = AppServices.create()
    try:
        worker = services.share_machine("127.0.0.1", 0, trust_network=False)
        assert services.shared_worker is worker
        assert worker.running
    finally:
        services.close()
    assert services.shared_worker is None
    assert not worker.running
    assert worker.exit_code == 0
