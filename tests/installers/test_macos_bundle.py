"""The macOS pieces that can be checked on Linux: Info.plist keys, entitlements, dmg naming,
the signing script's syntax and the CI workflow's shape. Building the .app needs a Mac."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from installers.macos import dmg
from installers.macos.bundle_info import BUNDLE_ID, info_plist

ROOT = Path(__file__).resolve().parents[2]
MACOS = ROOT / "installers" / "macos"


def test_info_plist_serialises_and_names_the_version() -> None:
    keys = plistlib.loads(plistlib.dumps(info_plist("1.2.3")))
    assert keys["CFBundleShortVersionString"] == "1.2.3"
    assert keys["NSHighResolutionCapable"] is True
    assert tuple(int(x) for x in keys["LSMinimumSystemVersion"].split(".")) >= (13, 0)
    assert BUNDLE_ID.count(".") >= 2


def test_entitlements_are_a_plist_of_hardened_runtime_exceptions() -> None:
    entitlements = plistlib.loads((MACOS / "entitlements.plist").read_bytes())
    assert entitlements
    assert all(key.startswith("com.apple.security.cs.") for key in entitlements)
    assert "com.apple.security.app-sandbox" not in entitlements


def test_dmg_is_named_by_version_and_cpu() -> None:
    assert dmg.dmg_file_name("0.1.0", "arm64") == "Homefire-0.1.0-arm64.dmg"
    command = dmg.hdiutil_command(Path("stage"), Path("out.dmg"))
    assert command[:2] == ["hdiutil", "create"]
    assert "UDZO" in command


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the refusal off macOS")
def test_dmg_build_refuses_off_macos(tmp_path: Path) -> None:
    with pytest.raises(dmg.DmgBuildError, match="only be built on macOS"):
        dmg.build_dmg(tmp_path / "Homefire.app", tmp_path / "x.dmg", tmp_path / "stage")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_signing_script_parses_and_refuses_without_identity() -> None:
    script = MACOS / "sign_and_notarize.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    run = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert run.returncode != 0
    assert "SIGN_IDENTITY" in run.stderr


def test_workflow_builds_on_apple_silicon_and_uploads_the_dmg() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "macos.yml").read_text())
    job = workflow["jobs"]["app"]
    assert job["runs-on"].startswith("macos-14")
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "python3 -m installers.build all" in runs
    assert "sign_and_notarize.sh" in runs
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads[0]["with"]["path"] == "dist/Homefire-*.dmg"
