"""A Hub file's GGUF header read with HTTP Range requests only, so ``fit`` needs no download.

:class:`RemoteFile` is a ``ByteSource`` for :mod:`app.core.catalog.gguf_header`: it fetches the
blocks the parser asks for (1 MiB each, a few requests for a typical header; the parser caps
the total) and never the weights. It keeps only the last few blocks: the parser reads forward,
so a long header costs requests, not memory. :func:`variants_for_repo` turns a repo id into the
recommender's variants: one header per quant, sizes from the Hub listing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import httpx

from app.core.catalog.estimator import ModelFacts
from app.core.catalog.gguf_header import ByteSource, read_header_parts
from app.core.catalog.hub import HubClient, HubVariant, gated_error
from app.core.catalog.recommend import Variant
from app.core.errors import HubOffline, HubUnavailable, InvalidModelFile, RepoNotFound

BLOCK = 1 << 20
BLOCKS_KEPT = 4  # the parser reads forward in 1-block chunks; a few spare cover its look-back
_ATTEMPTS = 3


class RemoteFile:
    """Random access to a remote file through ``Range: bytes=a-b`` requests, block-cached."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        size: int,
        name: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._url = url
        self._size = size
        self._name = name
        self._headers = dict(headers or {})
        self._blocks: OrderedDict[int, bytes] = OrderedDict()  # least recently read first
        self.requests_made = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0:
            raise InvalidModelFile(f"{self._name}: negative read at {offset}")
        end = min(offset + size, self._size)
        if offset >= end:
            return b""
        first, last = offset // BLOCK, (end - 1) // BLOCK
        missing = [b for b in range(first, last + 1) if b not in self._blocks]
        if missing:
            self._fetch(missing[0], missing[-1])
        data = b"".join(self._blocks[b] for b in range(first, last + 1))
        for block in range(first, last + 1):
            self._blocks.move_to_end(block)
        while len(self._blocks) > BLOCKS_KEPT:
            self._blocks.popitem(last=False)
        start = offset - first * BLOCK
        return data[start : start + (end - offset)]

    @property
    def blocks_kept(self) -> int:
        return len(self._blocks)

    def _fetch(self, first: int, last: int) -> None:
        start, stop = first * BLOCK, min((last + 1) * BLOCK, self._size)
        body = self._get_range(start, stop)
        for block in range(first, last + 1):
            lo = block * BLOCK - start
            self._blocks[block] = body[lo : lo + BLOCK]

    def _get_range(self, start: int, stop: int) -> bytes:
        headers = {**self._headers, "Range": f"bytes={start}-{stop - 1}"}
        for attempt in range(1, _ATTEMPTS + 1):
            self.requests_made += 1
            try:
                with self._client.stream("GET", self._url, headers=headers) as response:
                    _raise_for_status(response, self._name, "Authorization" in self._headers)
                    if response.status_code == 206:
                        body = response.read()
                    else:  # Range ignored: read only what was asked, then hang up
                        body = _read_prefix(response, stop)[start:stop]
            except httpx.TransportError as exc:
                if attempt == _ATTEMPTS:
                    raise HubOffline(f"cannot read {self._name} from the Hub: {exc}") from exc
                continue
            if len(body) != stop - start:
                raise InvalidModelFile(
                    f"{self._name}: asked for {stop - start} bytes at {start}, got {len(body)}"
                )
            return body
        raise HubUnavailable(f"cannot read {self._name} from the Hub")


def _read_prefix(response: httpx.Response, stop: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    for chunk in response.iter_bytes(BLOCK):
        chunks.append(chunk)
        got += len(chunk)
        if got >= stop:
            break
    return b"".join(chunks)


def _raise_for_status(response: httpx.Response, name: str, has_token: bool) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    if status in (401, 403):
        raise gated_error(name, "the model's page", has_token)
    if status == 404:
        raise RepoNotFound(f"{name} is not on the Hub")
    raise HubUnavailable(f"the Hub answered {status} while reading {name}")


def remote_sources(hub: HubClient, client: httpx.Client, variant: HubVariant) -> list[ByteSource]:
    """One Range-reading source per shard of a variant."""
    return [
        RemoteFile(
            client,
            hub.resolve_url(variant.repo_id, f.path),
            f.size,
            f"{variant.repo_id}/{f.path}",
            hub.auth_headers(),
        )
        for f in variant.files
    ]


def variants_for_repo(repo_id: str, hub: HubClient) -> list[Variant]:
    """Every complete GGUF variant of a Hub repo with the facts its header gives, for ``fit``."""
    variants = [v for v in hub.variants(repo_id) if v.complete]
    if not variants:
        raise RepoNotFound(f"{repo_id} has no GGUF files")
    result = []
    with httpx.Client(follow_redirects=True, timeout=30.0) as client:
        for variant in variants:
            header = read_header_parts(remote_sources(hub, client, variant))
            result.append(
                Variant(
                    quant=header.quant or variant.quant or variant.key,
                    facts=ModelFacts.from_header(header),
                    file_size=variant.size_bytes,
                    size_basis="Hub listing",
                    files=tuple(f.path for f in variant.files),
                )
            )
    return result


def hub_variant_for(variant: Variant, listed: Sequence[HubVariant]) -> HubVariant | None:
    """The complete Hub variant a verdict's variant stands for, or None when the repo lacks it.

    Variants read from the Hub name their files; catalog variants name none, so their quant
    decides (the first complete file of that quant, as the Hub lists it).
    """
    for hub_variant in listed:
        if not hub_variant.complete:
            continue
        paths = tuple(f.path for f in hub_variant.files)
        if paths == variant.files or (not variant.files and hub_variant.quant == variant.quant):
            return hub_variant
    return None
