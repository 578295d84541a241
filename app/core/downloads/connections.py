"""The HTTP connections that move file bytes: urllib3 pools, with proxies from the environment.

Why urllib3 here while the rest of Homefire speaks httpx: the download thread must take large
blocks straight off the socket. httpx (through httpcore and h11) reads 64 KiB at a time and
copies every block twice on its way out, which measured at about half of curl's speed on
loopback. urllib3's ``read1(n)`` is a single ``recv`` of up to ``n`` bytes into one buffer, and
its ``shutdown()`` lets a cancel on another thread unblock a read stuck on a stalled server.
urllib3 still does what we would not want to write by hand: redirects to the CDN (dropping the
``Authorization`` header when the host changes), TLS, keep-alive pools.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import certifi
import urllib3
from urllib3.exceptions import ProxySchemeUnknown

from app.core.errors import DownloadError

_MAX_REDIRECTS = 10


class Connections:
    """Pools of keep-alive connections: one direct, one per proxy the environment names."""

    def __init__(self, stall_timeout_s: float, per_host: int) -> None:
        # Retries are the transfer's business (it resumes with Range); urllib3 only redirects.
        self._timeout = urllib3.Timeout(connect=min(stall_timeout_s, 15.0), read=stall_timeout_s)
        self._retries = urllib3.Retry(
            total=_MAX_REDIRECTS,
            connect=0,
            read=0,
            status=0,
            other=0,
            redirect=_MAX_REDIRECTS,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self._per_host = per_host
        # certifi, as httpx and huggingface_hub use: the OS store is empty on some Pythons.
        self._direct = urllib3.PoolManager(
            maxsize=per_host, timeout=self._timeout, retries=self._retries, ca_certs=certifi.where()
        )
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._lock = threading.Lock()

    def get(self, url: str, headers: Mapping[str, str]) -> urllib3.BaseHTTPResponse:
        """Start a GET, following redirects; the body is left unread for the caller to stream."""
        return self._manager_for(url).request(
            "GET",
            url,
            headers=dict(headers),
            preload_content=False,
            decode_content=False,
            redirect=True,
        )

    def close(self) -> None:
        with self._lock:
            managers = [self._direct, *self._proxied.values()]
            self._proxied.clear()
        for manager in managers:
            manager.clear()

    def _manager_for(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxies = getproxies()  # HTTPS_PROXY and friends, as httpx's trust_env reads them
        proxy = proxies.get(parts.scheme) or proxies.get("all")
        if not proxy or proxy_bypass(parts.hostname or ""):
            return self._direct
        with self._lock:
            manager = self._proxied.get(proxy)
            if manager is None:
                try:
                    manager = urllib3.ProxyManager(
                        proxy,
                        maxsize=self._per_host,
                        timeout=self._timeout,
                        retries=self._retries,
                        ca_certs=certifi.where(),
                    )
                except ProxySchemeUnknown as exc:
                    raise DownloadError(
                        f"the proxy {proxy} is not supported for downloads (use an http:// or "
                        "https:// proxy)"
                    ) from exc
                self._proxied[proxy] = manager
            return manager
