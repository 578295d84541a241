"""The Host header allow-list that defeats DNS rebinding (Ollama CVE-2024-28224).

A rebinding page reaches 127.0.0.1 under its own name, so its requests carry
``Host: attacker.example``. Only names that cannot be rebound pass: ``localhost``, loopback IP
literals, the address the server is bound to, this machine's own addresses when it listens on
all of them, and names the user added. An empty Host (``Host: :8080``) never passes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import psutil

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def _machine_addresses() -> set[str]:
    addresses = {socket.gethostname().lower()}
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                addresses.add(entry.address.split("%")[0].lower())
    return addresses


def allowed_host_names(bound_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    names = {*LOCAL_NAMES, bound_host.strip("[]").lower(), *(n.lower() for n in extra)}
    try:
        if ipaddress.ip_address(bound_host.strip("[]")).is_unspecified:
            names |= _machine_addresses()
    except ValueError:
        pass
    names.discard("")
    return frozenset(names)


def is_loopback(host: str) -> bool:
    """True for names and addresses only this machine can reach (``localhost``, 127/8, ::1)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The name in a Host header without its port; None when it is empty or malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        name, rest = header[1:end], header[end + 1 :]
    else:
        name, _, port = header.partition(":")
        rest = f":{port}" if port else ""
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    return name or None


def host_allowed(header: str, allowed: frozenset[str]) -> bool:
    name = host_name(header)
    if name is None:
        return False
    return name in allowed or is_loopback(name)
