"""``homefire worker``'s core: ggml's RPC server on this machine's best backend, on its own thread.

ggml's server loop never returns and does not say which port it bound, so it runs on a daemon
thread while the caller's thread waits for a stop signal, and the bound port is read back from
the process's own listening sockets (port 0 picks a free one, as the HTTP server allows).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from app.core.cluster.ggml_rpc import (
    RPC_LIBRARY_MISSING,
    LocalDevice,
    devices_to_share,
    rpc_available,
    serve_forever,
)
from app.core.cluster.worker import WorkerAddress
from app.core.errors import ConfigError, ModelLoadError
from app.core.server.host_check import is_loopback

_LISTEN_DEADLINE_S = 30.0  # backends initialise first (a GPU's can take seconds)
_LISTEN_POLL_S = 0.05

UNAUTHENTICATED_WARNING = (
    "warning: ggml's RPC protocol has no authentication and no encryption. Anyone who can reach "
    "{address} can use this machine's {devices}: run computations on it, read and overwrite "
    "its memory, and fill its disk cache. Share it only on a network you trust (your own LAN, "
    "behind a firewall), never on the internet or public Wi-Fi."
)


@dataclass(frozen=True)
class RunningWorker:
    address: WorkerAddress
    devices: tuple[LocalDevice, ...]
    cache_dir: Path | None
    thread: threading.Thread


def start_worker(
    host: str,
    port: int,
    *,
    device_names: Sequence[str] = (),
    cache_dir: Path | None = None,
    n_threads: int,
    trust_network: bool = False,
) -> RunningWorker:
    """Start serving; returns once the port is bound. ``ConfigError`` for a non-loopback host
    without ``trust_network``, an IPv6 host, or a port that cannot be bound."""
    if not is_loopback(host) and not trust_network:
        raise ConfigError(
            f"listening on {host} shares this machine with the network, and ggml's RPC "
            "protocol has no authentication: pass --trust-network to confirm the network is yours"
        )
    if ":" in host:
        raise ConfigError("llama.cpp's RPC server does not listen on IPv6; use an IPv4 address")
    if not rpc_available():
        raise ModelLoadError(RPC_LIBRARY_MISSING)
    devices = tuple(devices_to_share(device_names))
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    before = _listening_ports()
    thread = threading.Thread(
        target=serve_forever,
        args=(f"{host}:{port}", cache_dir, n_threads, devices),
        name="rpc-worker",
        daemon=True,  # ggml's accept loop never returns; the process's exit ends it
    )
    thread.start()
    deadline = time.monotonic() + _LISTEN_DEADLINE_S
    while time.monotonic() < deadline:
        new = _listening_ports() - before
        if port:
            new &= {port}
        if new:
            return RunningWorker(WorkerAddress(host, min(new)), devices, cache_dir, thread)
        if not thread.is_alive():
            break
        time.sleep(_LISTEN_POLL_S)
    raise ConfigError(
        f"the worker could not listen on {host}:{port} (is the port in use, or the address "
        "not this machine's?)"
    )


def _listening_ports() -> set[int]:
    connections = psutil.Process().net_connections(kind="tcp")
    return {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN and c.laddr}
