"""Download throughput: Homefire vs curl vs hf_hub_download, same 1 GB file, same loopback Hub.

    .venv/bin/python bench/download.py [--size-mb 1024] [--rounds 3]

Serves a generated file from tests/fixtures/hub_server.py run as its own process (so the
server does not share a GIL with the clients) and fetches it with each client in turn, every
round in a rotated order, so a load spike from another process on the machine hits each client
alike. Prints MB/s per run, then Homefire / curl as the median of the per-round ratios and as
best / best (target: Homefire >= 0.95x curl). Homefire's time includes what it does before the
file is usable: HEAD, transfer, sha256, fsync, rename (curl and hf_hub_download do not fsync).
Python imports happen before any clock starts.

Then kills `homefire pull` with SIGKILL at 50 %, runs it again and reports how many bytes the
server sent in total against the file size (target: <= 1 % extra), split into the first run
(what it wrote to the ``.part`` file, and what was in flight when it died: the kernel's socket
buffers, which autotune to several MiB on a fast link) and the second run (which should send
exactly the bytes the ``.part`` file lacked). Every figure is measured.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
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
        out.flush()
        # On disk before any client runs: 1 GB of dirty pages would otherwise be written back
        # in the middle of whichever run crosses the kernel's background threshold.
        os.fsync(out.fileno())


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


def timed(label: str, fn: Callable[[], None], size: int) -> float:
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


def kill_and_resume(endpoint: str, home: Path, size: int) -> tuple[int, int, int]:
    """(bytes in the .part at the kill, bytes sent to the killed run, bytes sent to the rerun)."""
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
    time.sleep(0.5)  # let the server's send fail on the dead connection before counting
    first = bytes_sent(endpoint) - before
    subprocess.run(
        cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return killed_at, first, bytes_sent(endpoint) - before - first


def clear(tmp: Path) -> None:
    for leftover in ("curl.out", "hf-home", "hf-cache"):
        path = tmp / leftover
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def report_ratios(rates: dict[str, list[float]]) -> None:
    print("ratios to curl (measured):")
    for name, target in (("homefire", "  (target >= 0.95x)"), ("hf_hub_download", "")):
        paired = [mine / curl for mine, curl in zip(rates[name], rates["curl"], strict=True)]
        per_round = " ".join(f"{r:.2f}" for r in paired)
        best = max(rates[name]) / max(rates["curl"])
        print(
            f"  {name + ' / curl':<22} median of rounds {statistics.median(paired):.2f}x, "
            f"best / best {best:.2f}x{target}   rounds: {per_round}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mb * (1 << 20)
    sys.path.insert(0, str(ROOT))
    # Imports before any clock starts: the runs time transfers, not module loading.
    for module in ("huggingface_hub", "app.core.catalog.hub", "app.core.downloads.manager"):
        importlib.import_module(module)

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
        clients: list[tuple[str, Callable[[], None]]] = [
            ("curl", lambda: run_curl(url, tmp / "curl.out")),
            ("homefire", lambda: run_homefire(endpoint, tmp / "hf-home")),
            ("hf_hub_download", lambda: run_hf(endpoint, tmp / "hf-cache")),
        ]
        print(f"{args.size_mb} MiB file on {endpoint}, {args.rounds} rounds (all measured)")
        rates: dict[str, list[float]] = {name: [] for name, _ in clients}
        try:
            for round_no in range(args.rounds):
                print(f" round {round_no + 1}")
                shift = round_no % len(clients)
                for name, fn in clients[shift:] + clients[:shift]:
                    rates[name].append(timed(name, fn, size))
                    clear(tmp)
            report_ratios(rates)
            killed_at, first, second = kill_and_resume(endpoint, tmp / "kill-home", size)
            extra = (first + second - size) / size
            print(
                f"kill -9 at {killed_at / size:.1%}, then resume: server sent {first + second} "
                f"bytes for a {size}-byte file, {extra:+.2%} extra (target <= 1 %)"
            )
            print(
                f"  killed run: sent {first}, its .part held {killed_at} "
                f"({(first - killed_at) / 2**20:.1f} MiB in flight when it died); "
                f"rerun: sent {second} (the .part lacked {size - killed_at})"
            )
            rmem = Path("/proc/sys/net/ipv4/tcp_rmem")
            if rmem.exists():
                print(
                    f"  (TCP receive buffers here autotune up to {rmem.read_text().split()[2]} B)"
                )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
