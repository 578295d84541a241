"""One hardware description, rendered as text for ``homefire hw`` and as rich text for the page."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from app.core.hardware.builtin_profiles import builtin_profiles
from app.core.hardware.description import as_rich_text, as_text, describe
from app.core.hardware.profile import AbsentPart, CpuInfo, GpuDevice, HardwareProfile


def _machine() -> HardwareProfile:
    return HardwareProfile(
        name="this machine",
        source="detected",
        os="linux",
        cpu=CpuInfo("AMD <Ryzen> 9", 16, 32, ("avx2",), "x86_64"),
        ram_total_bytes=64 * 2**30,
        ram_available_bytes=40 * 2**30,
        gpus=(
            GpuDevice(
                "nvidia",
                "RTX 4090",
                24 * 2**30,
                backend="cuda",
                usable_by_build=False,
                unusable_reason="this build has no CUDA",
            ),
        ),
        backends=("cpu",),
        disk_free_bytes=500 * 2**30,
        absent=(AbsentPart("RAM bandwidth", "no DMI table readable"),),
    )


def test_both_renderings_carry_every_fact_of_the_one_description() -> None:
    profile = _machine()
    facts = describe(profile, Path("/models"))
    text, rich = as_text(profile, Path("/models")), as_rich_text(profile, Path("/models"))
    for fact in facts:
        assert fact.text in text
        if fact.label is not None:
            assert f"<b>{fact.label}</b>" in rich
    assert "usable: no, this build has no CUDA" in text
    assert "usable: no, this build has no CUDA" in rich
    assert "no DMI table readable" in rich


def test_the_rich_text_escapes_what_the_machine_reports() -> None:
    rich = as_rich_text(_machine())
    assert "AMD &lt;Ryzen&gt; 9" in rich
    assert "<Ryzen>" not in rich


def test_the_disk_says_where_only_when_a_folder_is_given() -> None:
    profile = _machine()
    assert "Disk:     500 GiB free at /models" in as_text(profile, Path("/models")).splitlines()
    assert "Disk:     500 GiB free" in as_text(profile).splitlines()


def test_a_planning_profile_says_its_figures_are_spec_figures() -> None:
    profile = builtin_profiles()[0]
    first_line = as_text(profile).splitlines()[0]
    assert (
        first_line == f"{profile.name} (built-in planning profile: spec figures, not measurements)"
    )
    assert "Sources:" in as_text(profile)
    user = replace(profile, source="user", name="Mine")
    assert as_text(user).startswith("Mine (your planning profile")
