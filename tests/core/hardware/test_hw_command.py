"""``homefire hw`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import run

TOP_LEVEL_KEYS = {
    "schema",
    "name",
    "source",
    "os",
    "cpu",
    "ram_total_bytes",
    "ram_available_bytes",
    "ram_bandwidth_gbs",
    "ram_bandwidth_source",
    "gpus",
    "backends",
    "llama_cpp_version",
    "disk_free_bytes",
    "absent",
    "sources",
}
CPU_KEYS = {
    "brand",
    "physical_cores",
    "logical_cores",
    "simd",
    "arch",
    "performance_cores",
    "efficiency_cores",
}
GPU_KEYS = {
    "index",
    "vendor",
    "name",
    "memory_total_bytes",
    "memory_free_bytes",
    "memory_used_bytes",
    "unified_memory",
    "usable_memory_bytes",
    "usable_memory_source",
    "memory_bandwidth_gbs",
    "memory_bandwidth_source",
    "backend",
    "usable_by_build",
    "unusable_reason",
    "driver_version",
    "cuda_version",
    "compute_capability",
    "power_draw_w",
    "energy_mj",
}


def test_hw_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["hw", "--json"]) == 0

    data = json.loads(capsys.readouterr().out)
    assert set(data) == TOP_LEVEL_KEYS
    assert data["schema"] == 1
    assert data["source"] == "detected"
    assert set(data["cpu"]) == CPU_KEYS
    assert "cpu" in data["backends"]
    assert data["ram_total_bytes"] > 0
    for part in data["absent"]:
        assert set(part) == {"part", "reason"}


def test_a_profile_s_gpu_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["hw", "--profile", "2x RTX 3090 + 128GB RAM", "--json"]) == 0

    data = json.loads(capsys.readouterr().out)
    assert set(data) == TOP_LEVEL_KEYS
    assert [set(gpu) for gpu in data["gpus"]] == [GPU_KEYS, GPU_KEYS]
    assert data["gpus"][0]["memory_total_bytes"] == 24576 * 1024**2


def test_hw_prints_a_summary_of_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["hw"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("This machine (detected now")
    for label in ("CPU:", "RAM:", "Backends:", "Disk:"):
        assert label in out


def test_hw_profile_prints_the_planning_profile_with_sources(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["hw", "--profile", "mac studio m3 ultra 512gb"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("Mac Studio M3 Ultra 512GB (built-in planning profile")
    assert "464 GiB" in out
    assert "819 GB/s" in out
    assert "usable: yes, through Metal" in out
    assert "Sources:" in out


def test_hw_profiles_lists_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["hw", "--profiles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8
    assert lines[0].startswith("Mac Studio M3 Ultra 512GB  [builtin]")

    assert run(["hw", "--profiles", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == 1
    assert len(data["profiles"]) == 8


def test_an_unknown_profile_exits_1_with_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["hw", "--profile", "Cray-1"]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("homefire: no hardware profile named 'Cray-1'; known profiles:")


def test_saving_importing_and_removing_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["hw", "--save-profile", "This box"]) == 0
    assert capsys.readouterr().out == "saved this machine as the profile 'This box'\n"
    exported = json.loads(
        _json_of(["hw", "--profile", "RTX 3060 12GB + 32GB RAM", "--json"], capsys)
    )
    exported["name"] = "Friend's PC"
    file = tmp_path / "friend.json"
    file.write_text(json.dumps(exported))

    assert run(["hw", "--import-profile", str(file)]) == 0
    assert run(["hw", "--profiles"]) == 0
    listing = capsys.readouterr().out
    assert "This box  [user]" in listing
    assert "Friend's PC  [user]" in listing

    assert run(["hw", "--remove-profile", "friend's pc"]) == 0
    assert run(["hw", "--profiles"]) == 0
    assert "Friend's PC" not in capsys.readouterr().out


def _json_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert run(argv) == 0
    return capsys.readouterr().out


def test_importing_a_broken_file_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "broken.json"
    file.write_text(
        '{"name": "x", "os": "linux", "cpu": {"brand": "y"}, "ram_total_bytes": "a lot"}'
    )

    assert run(["hw", "--import-profile", str(file)]) == 1

    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "'ram_total_bytes' must be a whole number" in err
