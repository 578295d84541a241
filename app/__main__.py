"""``python -m app`` and the ``homefire`` console script."""

from __future__ import annotations

import sys

from app.cli import run


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
