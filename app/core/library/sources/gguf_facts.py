"""What a listed GGUF is: architecture and quant from its header, read without loading weights."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from app.core.catalog.gguf_header import read_local_file
from app.core.catalog.quants import quant_from_filename
from app.core.errors import InvalidModelFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GgufFacts:
    architecture: str
    quant: str | None


def read_facts(path: Path) -> GgufFacts | None:
    """The header's facts, or None (logged) for a file that is not a readable GGUF."""
    try:
        header = read_local_file(path)
    except InvalidModelFile as exc:
        log.info("skipping %s: %s", path, exc.user_message)
        return None
    return GgufFacts(header.architecture, header.quant or quant_from_filename(path.name))
