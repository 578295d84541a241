"""The wheel users install carries the package, the console script and resources/, nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_resources_and_the_console_script(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("homefire-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    shipped = {
        p.relative_to(ROOT / "resources").as_posix()
        for p in (ROOT / "resources").rglob("*")
        if p.is_file()
    }
    assert shipped, "resources/ is empty"
    for resource in shipped:
        assert f"app/resources/{resource}" in names
    assert "app/core/engine/engine.py" in names
    assert "homefire = app.__main__:main" in scripts
    # Developer scripts and the docs' pictures stay in the repository.
    assert not any(n.startswith(("tests/", "tools/", "docs/")) for n in names)
