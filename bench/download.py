"""Download throughput: Homefire vs curl vs hf_hub_download, same 1 GB file, same loopback Hub.

    .venv/bin/python bench/download.py [--size-mb 1024] [--rounds 2]

Serves a generated file from tests/fixtures/hub_server.py run as its own process (so the
server does not share a GIL with the clients), fetches it with each client in turn (best of
``--rounds``), prints MB/s and the ratios to curl (target: Homefire >= 0.95x curl). Homefire's
time includes what it does before the file is usable: HEAD, transfer, sha256, fsync, rename.
Then kills `homefire pull` with SIGKILL at 50 %, runs it again and reports how many bytes the
server sent in total against the file size (target: <= 1 % extra). Every figure is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = "bench/OneGig-GGUF"
FILE = "onegig-Q4_K_M.gguf"
ROOT = Path(__file__).resolve().parent.parent


def make_file(path: Path, size: int) -> None:
    """GGUF magic, then incompressible bytes (one random block repeated: no CPU spent making it)."""
    block = os.urandom(16 << 20)
    with path.open("wb") as out:
        out.write(b"GGUF")
        written = 4
        while written < size:
            piece = block[: size - written]
            out.write(piece)
            written += len(piece)


def start_server(spec: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.hub_server", "--spec", str(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    endpoint = json.loads(proc.stdout.readline())["endpoint"]
    return proc, endpoint


def bytes_sent(endpoint: str) -> int:
    with urllib.request.urlopen(f"{endpoint}/_stats") as response:
        return int(json.load(response)["bytes_sent"].get(FILE, 0))


def timed(label: str, fn, size: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    rate = size / seconds / 1e6
    print(f"  {label:<16} {seconds:6.2f} s  {rate:8.1f} MB/s")
    return rate


def run_curl(url: str, out: Path) -> None:
    subprocess.run(["curl", "-sSfL", "-o", str(out), url], check=True)


def run_homefire(endpoint: str, home: Path) -> None:
    from app.core.catalog.hub import HubClient, HubSettings
    from app.core.downloads.manager import DownloadManager, DownloadRequest

    hub = HubClient(HubSettings(endpoint, offline=False, token=None))
    [variant] = hub.variants(REPO)
    manager = DownloadManager(home / "models", hub, workers=1)
    try:
        manager.submit(DownloadRequest(REPO, variant.files)).future.result()
    finally:
        manager.close()


def run_hf(endpoint: str, cache: Path) -> None:
    from huggingface_hub import hf_hub_download

    hf_hub_download(REPO, FILE, cache_dir=cache, endpoint=endpoint, token=False)


def kill_and_resume(endpoint: str, home: Path, size: int) -> tuple[int, int]:
    env = {
        **os.environ,
        "HOMEFIRE_HOME": str(home),
        "HF_ENDPOINT": endpoint,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    env.pop("HF_HUB_OFFLINE", None)
    cmd = [sys.executable, "-m", "app", "pull", REPO, "--quant", "Q4_K_M"]
    before = bytes_sent(endpoint)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    blobs = home / "data" / "models" / f"models--{REPO.replace('/', '--')}" / "blobs"
    killed_at = 0
    while proc.poll() is None:
        parts = list(blobs.glob("*.part")) if blobs.exists() else []
        if parts and parts[0].stat().st_size >= size // 2:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_at = parts[0].stat().st_size
            break
        time.sleep(0.005)
    subprocess.run(
        cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return killed_at, bytes_sent(endpoint) - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size = args.size_mb * (1 << 20)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="homefire-bench-") as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "source.gguf"
        make_file(source, size)
        spec = tmp / "spec.json"
        spec.write_text(
            json.dumps(
                {"repos": [{"repo_id": REPO, "files": [{"path": FILE, "source": str(source)}]}]}
            )
        )
        server, endpoint = start_server(spec)
        os.environ.pop("HF_HUB_OFFLINE", None)
        url = f"{endpoint}/{REPO}/resolve/main/{FILE}"
        print(f"{args.size_mb} MiB file on {endpoint} (measured, best of {args.rounds} rounds)")
        best = {"curl": 0.0, "homefire": 0.0, "hf_hub_download": 0.0}
        try:
            for _ in range(args.rounds):
                for name, fn in (
                    ("curl", lambda: run_curl(url, tmp / "curl.out")),
                    ("homefire", lambda: run_homefire(endpoint, tmp / "hf-home")),
                    ("hf_hub_download", lambda: run_hf(endpoint, tmp / "hf-cache")),
                ):
                    best[name] = max(best[name], timed(name, fn, size))
                    for leftover in ("curl.out", "hf-home", "hf-cache"):
                        path = tmp / leftover
                        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(
                            missing_ok=True
                        )
            print("ratios (measured, best rounds):")
            print(
                f"  homefire / curl        {best['homefire'] / best['curl']:.2f}x  (target >= 0.95x)"
            )
            print(f"  hf_hub_download / curl {best['hf_hub_download'] / best['curl']:.2f}x")
            killed_at, transferred = kill_and_resume(endpoint, tmp / "kill-home", size)
            extra = (transferred - size) / size
            print(
                f"kill -9 at {killed_at / size:.0%}, then resume: server sent {transferred} bytes for "
                f"a {size}-byte file, {extra:+.2%} extra (target <= 1 %)"
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
