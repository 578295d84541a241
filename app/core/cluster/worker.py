"""A worker's address, and a bounded probe of what it offers before any weights move.

The probe speaks ggml's RPC protocol itself, over a Python socket with a deadline, rather than
through libggml-rpc: ggml's client aborts the whole process on a peer that answers garbage, an
unexpected version or nothing, and waits forever on one that accepts and stays silent. Here each
of those is a ``WorkerIncompatible`` or ``WorkerUnreachable`` within ``timeout_s``.

The messages, as ggml-rpc's source defines them (all integers little-endian):
request ``| command: u8 | size: u64 | payload |``, reply ``| size: u64 | payload |``.
HELLO (14) must come first: its payload is 24 bytes of transport capabilities (zero: plain
TCP), its reply ``major, minor, patch, padding: u8`` and the server's 24 capability bytes.
DEVICE_COUNT (15) has no payload and answers a u32; GET_DEVICE_MEMORY (11) takes a u32 device
and answers ``free, total: u64``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import time
from dataclasses import dataclass

from app.core.errors import ConfigError, WorkerIncompatible, WorkerUnreachable

DEFAULT_PORT = 50052  # llama.cpp's rpc-server default, so its workers and ours interchange
# The ggml-rpc protocol of the llama.cpp that llama-cpp-python 0.3.36 vendors (ggml-rpc.h).
# A test probes a real `homefire worker`, so a wheel speaking another version fails it.
RPC_PROTO_MAJOR = 7
RPC_PROTO_MINOR = 0
# ggml's client accepts a server of its own major version and a minor no newer than its own.
_CMD_GET_DEVICE_MEMORY = 11
_CMD_HELLO = 14
_CMD_DEVICE_COUNT = 15
_CAPS_SIZE = 24
_HELLO_REPLY = struct.Struct("<BBBB24s")
_MAX_DEVICES = 16  # GGML_RPC_MAX_SERVERS: more would be a peer making numbers up
DEFAULT_PROBE_TIMEOUT_S = 5.0
_SILENT = (
    "worker {address} did not answer in time (busy with another client, or not a Homefire worker)"
)

_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


@dataclass(frozen=True)
class WorkerAddress:
    """Where a worker listens: ``host:port``, an IPv6 host in brackets (``[fe80::1]:50052``)."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> WorkerAddress:
        text = text.strip()
        if not text:
            raise ConfigError("a worker address is empty; write it as host:port")
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ConfigError(f"worker address {text!r}: write an IPv6 host as [addr]:port")
            port_text = rest[1:] if rest else ""
            try:
                ipaddress.IPv6Address(host)
            except ValueError as exc:
                raise ConfigError(f"worker address {text!r}: {host!r} is no IPv6 address") from exc
        else:
            if text.count(":") > 1:
                raise ConfigError(f"worker address {text!r}: write an IPv6 host as [addr]:port")
            host, _, port_text = text.partition(":")
            if not _HOST_NAME.match(host):
                raise ConfigError(f"worker address {text!r}: {host!r} is no host name or address")
        if not port_text:
            return cls(host, DEFAULT_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"worker address {text!r}: the port must be a number 1-65535")
        return cls(host, int(port_text))

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def endpoint(self) -> str:
        """The ``host:port`` string ggml-rpc takes. Its parser splits at the first colon, so it
        cannot name an IPv6 host: such a worker is refused here, in words, not by an abort."""
        if self.is_ipv6:
            raise ConfigError(
                f"worker {self}: llama.cpp's RPC client does not take IPv6 addresses; "
                "use the worker's IPv4 address or host name"
            )
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"


def parse_workers(text: str) -> tuple[WorkerAddress, ...]:
    """Addresses separated by commas or spaces (the Load dialog's field, a setting)."""
    parts = [part for part in re.split(r"[,\s]+", text) if part]
    addresses = tuple(WorkerAddress.parse(part) for part in parts)
    seen: set[WorkerAddress] = set()
    for address in addresses:
        if address in seen:
            raise ConfigError(f"worker {address} is listed twice")
        seen.add(address)
    return addresses


@dataclass(frozen=True)
class WorkerMemory:
    """What a worker offers: the memory of its devices (summed), as it reports it."""

    address: WorkerAddress
    free_bytes: int
    total_bytes: int
    description: str
    devices: int = 1
    version: tuple[int, int, int] = (RPC_PROTO_MAJOR, RPC_PROTO_MINOR, 0)


class _Peer:
    """One connection whose every read and write ends by a shared deadline."""

    def __init__(self, address: WorkerAddress, deadline: float) -> None:
        self._address = address
        self._deadline = deadline
        try:
            self._sock = socket.create_connection(
                (address.host, address.port), timeout=self._remaining()
            )
        except TimeoutError as exc:
            raise WorkerUnreachable(
                f"worker {address} did not accept a connection in time; is `homefire worker` "
                "running there, and does its firewall let this machine in?"
            ) from exc
        except OSError as exc:
            raise WorkerUnreachable(
                f"worker {address} cannot be reached ({exc.strerror or exc}); is "
                "`homefire worker` running there on that port?"
            ) from exc

    def _remaining(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise WorkerUnreachable(_SILENT.format(address=self._address))
        return remaining

    def ask(self, command: int, payload: bytes, reply_size: int) -> bytes:
        try:
            self._sock.settimeout(self._remaining())
            self._sock.sendall(struct.pack("<BQ", command, len(payload)) + payload)
            size = struct.unpack("<Q", self._read(8))[0]
            if size != reply_size:
                raise WorkerIncompatible(
                    f"worker {self._address} answered with a {size}-byte message where ggml's "
                    f"RPC protocol v{RPC_PROTO_MAJOR} has {reply_size}: it is not a compatible "
                    "`homefire worker` (or llama.cpp rpc-server)"
                )
            return self._read(reply_size)
        except TimeoutError as exc:
            raise WorkerUnreachable(_SILENT.format(address=self._address)) from exc
        except OSError as exc:
            raise WorkerIncompatible(
                f"worker {self._address} closed the connection during the RPC handshake "
                f"({exc.strerror or exc}): it is not a compatible `homefire worker` (another "
                "llama.cpp version, or another service on that port)"
            ) from exc

    def _read(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            self._sock.settimeout(self._remaining())
            chunk = self._sock.recv(size - len(data))
            if not chunk:
                raise ConnectionResetError(0, "the peer closed the connection")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        self._sock.close()


def probe_worker(
    address: WorkerAddress, timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
) -> WorkerMemory:
    """Connect, check the RPC protocol version, and read the worker's memory, within
    ``timeout_s`` in all. ``WorkerUnreachable`` when nothing answers in time,
    ``WorkerIncompatible`` for another version or a peer that is no RPC server.

    A worker serves one client at a time: while a model is loaded on it, a probe from another
    machine waits for that client to leave and so ends as ``WorkerUnreachable``.
    """
    peer = _Peer(address, time.monotonic() + timeout_s)
    try:
        hello = peer.ask(_CMD_HELLO, bytes(_CAPS_SIZE), _HELLO_REPLY.size)
        major, minor, patch, _, _ = _HELLO_REPLY.unpack(hello)
        if major != RPC_PROTO_MAJOR or minor > RPC_PROTO_MINOR:
            raise WorkerIncompatible(
                f"worker {address} speaks ggml RPC protocol v{major}.{minor}.{patch}; this "
                f"Homefire speaks v{RPC_PROTO_MAJOR}.{RPC_PROTO_MINOR}: install the same "
                "Homefire (llama.cpp) version on both machines"
            )
        (count,) = struct.unpack("<I", peer.ask(_CMD_DEVICE_COUNT, b"", 4))
        if not 0 < count <= _MAX_DEVICES:
            raise WorkerIncompatible(f"worker {address} reports {count} devices")
        free = total = 0
        for device in range(count):
            reply = peer.ask(_CMD_GET_DEVICE_MEMORY, struct.pack("<I", device), 16)
            device_free, device_total = struct.unpack("<QQ", reply)
            free += device_free
            total += device_total
    finally:
        peer.close()
    plural = "s" if count > 1 else ""
    return WorkerMemory(
        address=address,
        free_bytes=free,
        total_bytes=total,
        description=f"{count} device{plural}, RPC v{major}.{minor}.{patch}",
        devices=count,
        version=(major, minor, patch),
    )
