"""Where Homefire's shipped resources (catalog, pricing, icons) are, in a wheel or a checkout."""

from __future__ import annotations

from pathlib import Path

import app


def resources_dir() -> Path:
    """``app/resources`` inside an installed wheel, else the checkout's top-level ``resources``."""
    package = Path(app.__file__).parent
    bundled = package / "resources"
    if bundled.is_dir():
        return bundled
    return package.parent / "resources"
