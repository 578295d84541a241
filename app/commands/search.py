"""``homefire search QUERY``: GGUF repos on the Hugging Face Hub.

homefire search QUERY [--sort downloads|likes|recent] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.core.catalog.hub import HubClient, HubRepo


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
    hub = HubClient.from_env()
    repos = hub.search(args.query, sort=args.sort, limit=max(1, args.limit))
    if args.json:
        print(json.dumps([repo_to_dict(r) for r in repos], indent=2))  # noqa: T201
        return 0
    if not repos:
        print(f"no GGUF repos on the Hub match {args.query!r}")  # noqa: T201
        return 0
    width = max(len(r.repo_id) for r in repos)
    print(f"{'REPO':<{width}}  {'DOWNLOADS':>10}  {'LIKES':>6}")  # noqa: T201
    for repo in repos:
        gated = "  (gated: needs a token)" if repo.gated else ""
        print(f"{repo.repo_id:<{width}}  {repo.downloads:>10}  {repo.likes:>6}{gated}")  # noqa: T201
    print(f"\nhomefire pull {repos[0].repo_id}   downloads the variant that fits this machine")  # noqa: T201
    return 0


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
