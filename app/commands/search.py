"""``homefire search QUERY``: GGUF repos on the Hugging Face Hub.

homefire search QUERY [--sort downloads|likes|recent] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.core.catalog.catalog import CatalogEntry, load_catalog
from app.core.catalog.hub import HubRepo
from app.core.errors import HubError
from app.core.services import AppServices


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search",
        help="find GGUF models on the Hugging Face Hub",
        description="Search the Hugging Face Hub for GGUF repos whose id contains QUERY.",
    )
    parser.add_argument("query", help="words in the repo id, e.g. 'qwen3 4b'")
    parser.add_argument(
        "--sort", choices=("downloads", "likes", "recent"), default="downloads", help="order"
    )
    parser.add_argument("--limit", type=int, default=20, help="how many repos (default 20)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    curated = curated_matches(args.query, load_catalog())
    hub_error: HubError | None = None
    try:
        with AppServices.create() as services:
            repos = services.hub.search(args.query, sort=args.sort, limit=max(1, args.limit))
    except HubError as exc:
        if not curated:
            raise
        hub_error, repos = exc, []  # the catalog still answers offline
    if args.json:
        rows = [entry_to_dict(e) for e in curated] + [repo_to_dict(r) for r in repos]
        print(json.dumps(rows, indent=2))  # noqa: T201
        return 0
    if not curated and not repos:
        print(f"no GGUF repos on the Hub match {args.query!r}")  # noqa: T201
        return 0
    ids = [e.repo or e.id for e in curated] + [r.repo_id for r in repos]
    width = max(len(i) for i in ids)
    print(f"{'REPO':<{width}}  {'DOWNLOADS':>10}  {'LIKES':>6}")  # noqa: T201
    for entry in curated:
        label = f"{entry.repo or entry.id:<{width}}  {'curated':>10}  {'':>6}"
        print(f"{label}  {entry.name}: {entry.use}")  # noqa: T201
    for repo in repos:
        gated = "  (gated: needs a token)" if repo.gated else ""
        print(f"{repo.repo_id:<{width}}  {repo.downloads:>10}  {repo.likes:>6}{gated}")  # noqa: T201
    if hub_error is not None:
        print(f"(the Hub was not searched: {hub_error.user_message})")  # noqa: T201
    print(f"\nhomefire pull {ids[0]}   downloads the variant that fits this machine")  # noqa: T201
    return 0


def curated_matches(query: str, entries: tuple[CatalogEntry, ...]) -> list[CatalogEntry]:
    """Catalog entries with a Hub repo whose id, name or repo contains every query word."""
    words = query.lower().split()
    return [
        e
        for e in entries
        if e.repo and all(w in f"{e.id} {e.name} {e.repo}".lower() for w in words)
    ]


def entry_to_dict(entry: CatalogEntry) -> dict[str, Any]:
    """A curated catalog entry in the ``--json`` list (listed before Hub results)."""
    return {
        "repo_id": entry.repo,
        "name": entry.name,
        "use": entry.use,
        "license": entry.license,
        "source": "catalog",
    }


def repo_to_dict(repo: HubRepo) -> dict[str, Any]:
    """The ``--json`` shape (stable): one object per repo."""
    return {
        "repo_id": repo.repo_id,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "created_at": repo.created_at.isoformat() if repo.created_at else None,
        "gated": repo.gated,
        "source": "hub",
    }
