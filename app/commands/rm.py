"""``homefire rm MODEL``: delete a model Homefire downloaded.

homefire rm MODEL [--force]

Another tool's file (Hugging Face cache, LM Studio, a folder you added) is deleted only with
``--force``; Ollama's and the starter model never (their own tools remove them).
"""

from __future__ import annotations

import argparse
from typing import Any

from app.core.errors import UnknownModel
from app.core.library.library import ModelLibrary
from app.core.library.sources.removal import remove_model
from app.core.services import AppServices
from app.core.sizes import format_size


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rm",
        help="delete a model Homefire downloaded",
        description="Delete a model by its exact name in `homefire ls` (or its path); a "
        "shorter name only lists the models it could mean.",
    )
    parser.add_argument("model", help="the exact name from `homefire ls`, or a GGUF path")
    parser.add_argument(
        "--force", action="store_true", help="also delete a file another tool put there"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with AppServices.create() as services:
        return _remove(services.library, args.model, args.force)


def _remove(library: ModelLibrary, wanted: str, force: bool) -> int:
    model = library.resolve(wanted, allow_prefix=False)
    if model.source == "file":  # a path: find which library entry it is, to know its owner
        listed = [
            m for m in library.models() if model.path in {p.resolve() for p in (m.path, *m.parts)}
        ]
        if not listed:
            raise UnknownModel(f"{model.path} is not a model in the library; delete it yourself")
        model = listed[0]
    removed = remove_model(model, force=force)
    print(f"deleted {model.name} ({format_size(model.size_bytes)}, {len(removed)} files)")  # noqa: T201
    return 0
