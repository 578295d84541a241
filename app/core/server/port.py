"""Which port to offer: Ollama's 11434 when it is free, so Ollama clients work unconfigured."""

from __future__ import annotations

import socket

OLLAMA_PORT = 11434


def port_is_free(host: str, port: int) -> bool:
    """True if a listener could bind ``host:port`` now (another program may take it later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError:
        return False
    return True


def offer_port(host: str = "127.0.0.1", fallback: int = 8080) -> int:
    """11434 when free (clients of Ollama find Homefire unconfigured), else ``fallback``."""
    return OLLAMA_PORT if port_is_free(host, OLLAMA_PORT) else fallback
