"""``homefire worker`` as a user runs it: loopback unless told the network is trusted, the
address and memory it shares on its output, a clean stop on Ctrl-C and SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from app.cli import run
from tests.fixtures.rpc_workers import require_rpc, workers


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20"])
def test_listening_beyond_this_machine_needs_trust_network(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["worker", "--host", host, "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "--trust-network" in err
    assert "no authentication" in err


def test_an_ipv6_host_is_refused_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["worker", "--host", "::", "--port", "0", "--trust-network"]) == 1
    assert "IPv6" in capsys.readouterr().err


def test_an_unknown_device_is_refused_with_the_devices_there_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    require_rpc()
    assert run(["worker", "--port", "0", "--device", "NOPE0"]) == 1
    err = capsys.readouterr().err
    assert "'NOPE0'" in err
    assert "CPU" in err


def test_ctrl_c_stops_the_worker_cleanly(tmp_path: Path) -> None:
    require_rpc()
    with workers(tmp_path, 1) as (worker,):
        worker.process.send_signal(signal.SIGINT)
        assert worker.process.wait(30) == 0
