"""The Hugging Face Hub, seen through huggingface_hub: search, repo files, quant variants, metadata.

Every huggingface_hub or network error leaves this module as a typed ``HubError``. Every repo id
and file name the Hub hands back is checked here before anything can turn it into a path.
``HF_HUB_OFFLINE`` is honoured before any call, so offline mode never opens a socket.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Literal

import httpx2
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url
from huggingface_hub import errors as hf_errors
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import get_token as hf_saved_token

from app.core.catalog.quants import group_variant_files
from app.core.errors import (
    AppError,
    GatedRepo,
    HubError,
    HubOffline,
    HubUnavailable,
    RateLimited,
    RepoNotFound,
    UnsafeName,
)
from app.core.storage.secrets import read_secret

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"

SearchSort = Literal["downloads", "likes", "recent"]
_SORT_KEYS: dict[str, str] = {"downloads": "downloads", "likes": "likes", "recent": "created_at"}

_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_MAX_NAME = 255


# ---------------------------------------------------------------------------------------------
# Names that become paths.


def validate_repo_id(repo_id: str) -> str:
    """``org/name`` with plain characters; anything that could climb out of a folder is refused."""
    if not _REPO_ID_RE.match(repo_id) or ".." in repo_id or repo_id.endswith(".git"):
        raise UnsafeName(
            f"{repo_id!r} is not a Hugging Face repo id (expected org/name with letters, "
            "digits, '-', '_' or '.')"
        )
    return repo_id


def validate_repo_filename(filename: str) -> str:
    """A relative POSIX path inside a repo, read under POSIX and Windows rules (CVE-2026-15717)."""
    problem = _filename_problem(filename)
    if problem is not None:
        raise UnsafeName(f"a file name Homefire will not write ({problem}): {filename!r}")
    return filename


def _filename_problem(filename: str) -> str | None:
    if not filename or len(filename) > 1024:
        return "empty or too long"
    if "\x00" in filename or any(ord(c) < 32 for c in filename):
        return "control character"
    if "\\" in filename:
        return "backslash"
    if PurePosixPath(filename).is_absolute() or PureWindowsPath(filename).drive:
        return "absolute path"
    parts = filename.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "'..', '.' or empty path segment"
    if any(len(p) > _MAX_NAME for p in parts):
        return "path segment longer than 255 characters"
    return None


def is_sha256(value: str) -> bool:
    return bool(_SHA256_RE.match(value))


def is_commit_hash(value: str) -> bool:
    return bool(_COMMIT_RE.match(value))


# ---------------------------------------------------------------------------------------------
# What the adapter returns.


@dataclass(frozen=True)
class HubRepo:
    repo_id: str
    downloads: int
    likes: int
    created_at: datetime | None
    gated: bool


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    sha256: str | None  # the LFS oid; None for a small non-LFS file


@dataclass(frozen=True)
class HubVariant:
    """One quant of a repo: a single GGUF or every shard of a split one."""

    repo_id: str
    key: str
    quant: str | None
    files: tuple[HubFile, ...]
    split_count: int
    complete: bool

    @property
    def size_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def first_file(self) -> HubFile:
        return self.files[0]


@dataclass(frozen=True)
class FileMetadata:
    """A HEAD on ``/resolve/``: the commit, the content hash, the size, where the bytes live."""

    commit: str
    sha256: str | None
    size: int | None
    location: str


# ---------------------------------------------------------------------------------------------
# Token and settings.


def keyring_token() -> str | None:
    """Homefire's own saved Hub token (OS keyring); None where no keyring backend works."""
    return read_secret("huggingface-token")


def resolve_token(
    environ: Mapping[str, str], keyring_reader: Callable[[], str | None] = keyring_token
) -> str | None:
    """``HF_TOKEN``, then huggingface_hub's saved login, then Homefire's keyring entry."""
    token = environ.get("HF_TOKEN", "").strip()
    if token:
        return token
    saved = hf_saved_token()
    if saved:
        return saved
    return keyring_reader()


def _is_true(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class HubSettings:
    endpoint: str
    offline: bool
    token: str | None

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        keyring_reader: Callable[[], str | None] = keyring_token,
    ) -> HubSettings:
        env = os.environ if environ is None else environ
        offline = _is_true(env.get("HF_HUB_OFFLINE")) or _is_true(env.get("TRANSFORMERS_OFFLINE"))
        return cls(
            endpoint=(env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
            offline=offline,
            token=None if offline else resolve_token(env, keyring_reader),
        )


# ---------------------------------------------------------------------------------------------
# The adapter.


class HubClient:
    """Search, list and describe Hub repos; huggingface_hub holds the connections."""

    def __init__(self, settings: HubSettings) -> None:
        self._settings = settings
        self._api = HfApi(endpoint=settings.endpoint, token=settings.token or False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HubClient:
        return cls(HubSettings.from_env(environ))

    @property
    def settings(self) -> HubSettings:
        return self._settings

    def auth_headers(self) -> dict[str, str]:
        token = self._settings.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def search(self, query: str, sort: SearchSort = "downloads", limit: int = 20) -> list[HubRepo]:
        """GGUF repos whose id contains ``query``, most downloaded / liked / recent first."""
        self._require_online()
        with self._hub_errors(None):
            models = self._api.list_models(
                search=query or None,
                filter="gguf",
                sort=_SORT_KEYS[sort],  # type: ignore[arg-type]
                limit=limit,
            )
            found = [
                HubRepo(
                    repo_id=m.id,
                    downloads=m.downloads or 0,
                    likes=m.likes or 0,
                    created_at=m.created_at,
                    gated=bool(m.gated),
                )
                for m in models
            ]
        return [r for r in found if _REPO_ID_RE.match(r.repo_id)]

    def list_files(self, repo_id: str, revision: str = "main") -> list[HubFile]:
        """Every file of a repo with its size and LFS sha256, names checked."""
        validate_repo_id(repo_id)
        self._require_online()
        with self._hub_errors(repo_id):
            entries = list(self._api.list_repo_tree(repo_id, revision=revision, recursive=True))
        files = []
        for entry in entries:
            if not isinstance(entry, RepoFile):
                continue
            validate_repo_filename(entry.path)
            sha = entry.lfs.sha256 if entry.lfs is not None else None
            if sha is not None and not is_sha256(sha):
                raise HubError(f"the Hub gave {entry.path} a malformed sha256: {sha!r}")
            files.append(HubFile(entry.path, int(entry.size), sha))
        return files

    def variants(self, repo_id: str, revision: str = "main") -> list[HubVariant]:
        """The repo's GGUF quant variants (split shards grouped), projectors left out."""
        files = {f.path: f for f in self.list_files(repo_id, revision)}
        return [
            HubVariant(
                repo_id=repo_id,
                key=group.key,
                quant=group.quant,
                files=tuple(files[p] for p in group.files),
                split_count=group.split_count,
                complete=group.complete,
            )
            for group in group_variant_files(files)
        ]

    def file_metadata(self, repo_id: str, filename: str, revision: str = "main") -> FileMetadata:
        """HEAD on the resolve route: the commit it resolves to, the sha256, size and location."""
        validate_repo_id(repo_id)
        validate_repo_filename(filename)
        self._require_online()
        url = self.resolve_url(repo_id, filename, revision)
        with self._hub_errors(repo_id, filename):
            meta = get_hf_file_metadata(
                url, token=self._settings.token or False, endpoint=self._settings.endpoint
            )
        if meta.commit_hash is None or not is_commit_hash(meta.commit_hash):
            raise HubError(f"{self._settings.endpoint} did not say which commit {filename} is at")
        etag = meta.etag if meta.etag and is_sha256(meta.etag) else None
        return FileMetadata(meta.commit_hash, etag, meta.size, meta.location)

    def resolve_url(self, repo_id: str, filename: str, revision: str = "main") -> str:
        return hf_hub_url(repo_id, filename, revision=revision, endpoint=self._settings.endpoint)

    def model_page(self, repo_id: str) -> str:
        return f"{self._settings.endpoint}/{repo_id}"

    def _require_online(self) -> None:
        if self._settings.offline:
            raise HubOffline(
                "HF_HUB_OFFLINE is set, so Homefire does not contact the Hub; "
                "unset it to search or download"
            )

    @contextlib.contextmanager
    def _hub_errors(self, repo_id: str | None, filename: str | None = None) -> Iterator[None]:
        try:
            yield
        except AppError:
            raise  # our own checks inside the block
        except hf_errors.GatedRepoError as exc:
            has_token = self._settings.token is not None
            raise gated_error(
                repo_id or "this repo", self.model_page(repo_id or ""), has_token
            ) from exc
        except hf_errors.RemoteEntryNotFoundError as exc:
            raise RepoNotFound(f"{filename or 'that file'} is not in {repo_id}") from exc
        except hf_errors.RevisionNotFoundError as exc:
            raise RepoNotFound(f"{repo_id} has no such revision") from exc
        except hf_errors.RepositoryNotFoundError as exc:
            raise RepoNotFound(
                f"{repo_id or 'the repo'} was not found on the Hub (a private repo also needs a "
                "token: set HF_TOKEN or log in with `hf auth login`)"
            ) from exc
        except hf_errors.OfflineModeIsEnabled as exc:
            raise HubOffline("HF_HUB_OFFLINE is set, so Homefire does not contact the Hub") from exc
        except hf_errors.HfHubHTTPError as exc:
            raise http_status_error(exc.response.status_code, exc.response.headers) from exc
        except hf_errors.HFValidationError as exc:
            raise UnsafeName(str(exc).splitlines()[0]) from exc
        except (httpx2.TransportError, OSError) as exc:
            raise HubOffline(f"cannot reach {self._settings.endpoint}: {exc}") from exc


def gated_error(repo_id: str, page: str, has_token: bool) -> GatedRepo:
    """401 (no token) and 403 (a token without access) both mean: licence first, then token."""
    if has_token:
        return GatedRepo(
            f"{repo_id} is gated and your token has no access yet: accept the licence on the "
            f"model's page ({page}), then try again with that account's token"
        )
    return GatedRepo(
        f"{repo_id} is gated: accept the licence on the model's page ({page}), then set a token "
        "(HF_TOKEN, `hf auth login`, or Homefire's settings)"
    )


def http_status_error(status: int, headers: Mapping[str, str]) -> HubError:
    """A Hub HTTP status that is not about a missing or gated repo, as a typed error."""
    if status == 429:
        retry = headers.get("Retry-After", "")
        retry_s = int(retry) if retry.isdigit() else None
        wait = f" (it asks to wait {retry_s} s)" if retry_s is not None else ""
        return RateLimited(f"the Hub is rate-limiting requests{wait}; try again later", retry_s)
    if status >= 500:
        return HubUnavailable(f"the Hub answered {status} (a server-side problem); try again later")
    return HubError(f"the Hub answered {status}")
