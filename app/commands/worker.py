"""``homefire worker``: share this machine's memory and backend with another Homefire.

homefire worker [--host H] [--port P] [--device DEV ...] [--cache DIR | --no-cache]
                [--threads N] [--trust-network]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from app.core.cluster.worker import DEFAULT_PORT
from app.core.cluster.worker_server import UNAUTHENTICATED_WARNING, is_loopback, start_worker
from app.core.engine.backend import default_threads
from app.core.sizes import format_size
from app.core.storage.paths import AppPaths


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="share this machine's memory with another Homefire (a model too big for one)",
        description="Run llama.cpp's RPC server on this machine's best backend until Ctrl-C, so "
        "`homefire serve --worker HOST:PORT` elsewhere can put part of a model here.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; another address "
        "needs --trust-network)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="DEV",
        help="a llama.cpp device to share (CUDA0, MTL0, CPU; repeatable; default: the GPUs, "
        "else the CPU)",
    )
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="where received tensors are cached, so a reload skips resending them (default: "
        "Homefire's cache folder)",
    )
    cache.add_argument("--no-cache", action="store_true", help="cache no tensors on disk")
    parser.add_argument("--threads", type=int, help="CPU threads (default: one per core)")
    parser.add_argument(
        "--trust-network",
        action="store_true",
        help="confirm that everyone who can reach HOST may use this machine (the protocol has "
        "no authentication)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads is not None and args.threads < 1:
        print("homefire: --threads must be at least 1", file=sys.stderr)  # noqa: T201
        return 2
    if not 0 <= args.port < 65536:
        print("homefire: --port must be 0-65535", file=sys.stderr)  # noqa: T201
        return 2
    # Ctrl-C and a service manager's SIGTERM both ask for a stop; set before the server starts,
    # so a signal arriving at any moment after (a script that read the address) is a clean stop.
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    cache_dir: Path | None = None
    if not args.no_cache:
        cache_dir = args.cache or AppPaths.from_env().cache_dir / "rpc-tensors"
    worker = start_worker(
        args.host,
        args.port,
        device_names=args.device,
        cache_dir=cache_dir,
        n_threads=args.threads or default_threads(),
        trust_network=args.trust_network,
    )
    devices = ", ".join(device.name for device in worker.devices)
    if not is_loopback(args.host):
        warning = UNAUTHENTICATED_WARNING.format(address=worker.address, devices=devices)
        print(f"homefire: {warning}", file=sys.stderr)  # noqa: T201
    for device in worker.devices:
        print(  # noqa: T201
            f"Sharing {device.name} ({device.description}): {format_size(device.free_bytes)} "
            f"free of {format_size(device.total_bytes)}",
            file=sys.stderr,
        )
    if worker.cache_dir is not None:
        print(f"Tensor cache: {worker.cache_dir}", file=sys.stderr)  # noqa: T201
    # One line on stdout, so scripts (and tests) can read the address.
    print(f"Worker listening at {worker.address}", flush=True)  # noqa: T201
    while not stop.wait(0.5):
        if not worker.thread.is_alive():
            print("homefire: the RPC server stopped on its own", file=sys.stderr)  # noqa: T201
            return 1
    print("Worker stopped", file=sys.stderr)  # noqa: T201
    sys.stdout.flush()
    sys.stderr.flush()
    # ggml's accept loop cannot be stopped, and the libraries' exit-time destructors may wait on
    # the thread still inside it: leave without the interpreter's finalization.
    os._exit(0)
