"""`homefire pull` as a real process: killed with SIGKILL then run again, and a file-size limit
(RLIMIT_FSIZE gives a real EFBIG, as a full disk gives ENOSPC)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.downloads.conftest import FILE, REPO
from tests.fixtures.hub_server import HubServer, ServedFile, ServedRepo, tiny_gguf

MODEL_SIZE = 8 << 20


@pytest.fixture
def big_repo(hub_server: HubServer) -> bytes:
    data = tiny_gguf(payload_bytes=MODEL_SIZE, seed=7)
    hub_server.add_repo(ServedRepo(REPO, [ServedFile(FILE, data)]))
    return data


def homefire(*args: str, limit_bytes: int | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}

    def limit_file_size() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit_file_size,
    )


def listed_names() -> list[str]:
    proc = homefire("ls", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return [m["name"] for m in json.loads(out) if m["source"] == "homefire"]


def part_size(models_dir: Path) -> int:
    parts = list(models_dir.glob("models--*/blobs/*.part"))
    return parts[0].stat().st_size if parts else 0


def test_killed_download_resumes_and_transfers_at_most_one_percent_more(
    hub_server: HubServer, big_repo: bytes, homefire_home: Path
) -> None:
    models_dir = homefire_home / "data" / "models"
    hub_server.state.throttle_bps = 1 << 20
    proc = homefire("pull", REPO, "--quant", "Q4_K_M")
    deadline = time.monotonic() + 60
    while part_size(models_dir) < len(big_repo) * 0.3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert listed_names() == [], "a half-written file must never be listed"

    hub_server.state.throttle_bps = None
    again = homefire("pull", REPO, "--quant", "Q4_K_M")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert "downloaded and verified" in out
    assert hub_server.bytes_sent(FILE) <= len(big_repo) * 1.01
    assert listed_names() == [f"{REPO}:Q4_K_M"]


def test_file_size_limit_stops_with_disk_full_then_resumes(
    hub_server: HubServer, big_repo: bytes, homefire_home: Path
) -> None:
    proc = homefire("pull", REPO, "--quant", "Q4_K_M", limit_bytes=3 << 20)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "disk filled up" in err
    assert "partial file is kept" in err
    assert "Traceback" not in err
    assert listed_names() == []
    kept = part_size(homefire_home / "data" / "models")
    assert 0 < kept <= 3 << 20

    sent_before = hub_server.bytes_sent(FILE)
    again = homefire("pull", REPO, "--quant", "Q4_K_M")
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert listed_names() == [f"{REPO}:Q4_K_M"]
    # The second run fetched only what the kept part lacked.
    assert hub_server.bytes_sent(FILE) - sent_before == len(big_repo) - kept
