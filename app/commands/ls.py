"""``homefire ls``: every GGUF Homefire knows, wherever it lives.

homefire ls [--json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.core.library.model import LibraryModel
from app.core.services import AppServices
from app.core.sizes import format_size


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ls",
        help="list the models Homefire knows (its downloads and other tools')",
        description=(
            "List every GGUF Homefire can run: its own downloads, the Hugging Face cache, "
            "LM Studio's models folder, Ollama's models and folders you added."
        ),
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with AppServices.create() as services:
        models = services.library.models()
    if args.json:
        print(json.dumps([model_to_dict(m) for m in models], indent=2))  # noqa: T201
        return 0
    if not models:
        print("no models yet: `homefire search QUERY`, then `homefire pull REPO`")  # noqa: T201
        return 0
    rows = [
        (
            m.name,
            format_size(m.size_bytes),
            m.quant or "?",
            m.architecture or "?",
            m.source + ("" if m.owned else " (not Homefire's)"),
            str(m.path),
        )
        for m in models
    ]
    header = ("NAME", "SIZE", "QUANT", "ARCH", "SOURCE", "PATH")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) for i in range(5)]
        print("  ".join([*cells, row[5]]))  # noqa: T201
    return 0


def model_to_dict(model: LibraryModel) -> dict[str, Any]:
    """The ``--json`` shape (stable): one object per model."""
    return {
        "name": model.name,
        "path": str(model.path),
        "parts": [str(p) for p in model.parts],
        "size_bytes": model.size_bytes,
        "quant": model.quant,
        "architecture": model.architecture,
        "source": model.source,
        "owned": model.owned,
        "repo_id": model.repo_id,
    }
