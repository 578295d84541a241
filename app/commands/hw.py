"""``homefire hw``: what this machine has, or a planning profile; ``--json`` for scripts.

homefire hw [--json]                   this machine (detected now)
homefire hw --profile NAME [--json]    a built-in or saved planning profile
homefire hw --profiles [--json]        every planning profile
homefire hw --save-profile NAME        save this machine as a planning profile
homefire hw --import-profile FILE      add a profile from a JSON file (the --json format)
homefire hw --remove-profile NAME      remove a saved profile
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.core.errors import ConfigError
from app.core.hardware.build import backend_label
from app.core.hardware.detect import detect
from app.core.hardware.profile import GpuDevice, HardwareProfile
from app.core.hardware.profile_json import SCHEMA_VERSION, profile_from_dict, profile_to_dict
from app.core.hardware.profiles import (
    get_profile,
    list_profiles,
    remove_user_profile,
    save_user_profile,
)
from app.core.sizes import format_size
from app.core.storage.paths import AppPaths


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hw",
        help="show what this machine has (CPU, RAM, GPUs, usable backends)",
        description="Show this machine's hardware as Homefire sees it, or a planning profile.",
    )
    parser.add_argument("--json", action="store_true", help="print stable JSON (schema 1)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--profile", metavar="NAME", help="show a planning profile instead")
    which.add_argument("--profiles", action="store_true", help="list the planning profiles")
    which.add_argument(
        "--save-profile", metavar="NAME", help="save this machine as a planning profile"
    )
    which.add_argument(
        "--import-profile", metavar="FILE", help="add a planning profile from a JSON file"
    )
    which.add_argument("--remove-profile", metavar="NAME", help="remove a saved profile")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = AppPaths.from_env()
    if args.profiles:
        profiles = list_profiles(paths)
        if args.json:
            _emit_json(
                {"schema": SCHEMA_VERSION, "profiles": [profile_to_dict(p) for p in profiles]}
            )
        else:
            _emit("\n".join(_profile_line(profile) for profile in profiles))
        return 0
    if args.save_profile is not None:
        saved = save_user_profile(replace(detect(paths=paths), name=args.save_profile), paths)
        _emit(f"saved this machine as the profile {saved.name!r}")
        return 0
    if args.import_profile is not None:
        saved = save_user_profile(_read_profile_file(Path(args.import_profile)), paths)
        _emit(f"added the profile {saved.name!r}")
        return 0
    if args.remove_profile is not None:
        remove_user_profile(args.remove_profile, paths)
        _emit(f"removed the profile {args.remove_profile!r}")
        return 0
    profile = get_profile(args.profile, paths) if args.profile else detect(paths=paths)
    if args.json:
        _emit_json(profile_to_dict(profile))
    else:
        models_dir = None if args.profile else paths.models_dir
        _emit("\n".join(describe(profile, models_dir)))
    return 0


def _emit(text: str) -> None:
    sys.stdout.write(text + "\n")


def _emit_json(data: dict[str, Any]) -> None:
    _emit(json.dumps(data, indent=2, ensure_ascii=False))


def _read_profile_file(path: Path) -> HardwareProfile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the profile file {path}: {exc}") from exc
    return profile_from_dict(data, path.name)


def _profile_line(profile: HardwareProfile) -> str:
    gpus = ", ".join(_gpu_short(gpu) for gpu in profile.gpus) or "no GPU"
    return f"{profile.name}  [{profile.source}]  RAM {format_size(profile.ram_total_bytes)}; {gpus}"


def _gpu_short(gpu: GpuDevice) -> str:
    return f"{gpu.name} {format_size(gpu.usable_memory_bytes or gpu.memory_total_bytes)}"


def _heading(profile: HardwareProfile) -> str:
    if profile.source == "detected":
        return "This machine (detected now; sizes are measured, bandwidths are spec figures)"
    kind = "built-in" if profile.source == "builtin" else "your"
    return f"{profile.name} ({kind} planning profile: spec figures, not measurements)"


def _cpu_line(profile: HardwareProfile) -> str:
    cpu = profile.cpu
    parts = [cpu.brand]
    if cpu.physical_cores:
        split = ""
        if cpu.performance_cores and cpu.efficiency_cores:
            split = f" ({cpu.performance_cores} performance + {cpu.efficiency_cores} efficiency)"
        parts.append(f"{cpu.physical_cores} cores{split}")
    if cpu.logical_cores:
        parts.append(f"{cpu.logical_cores} threads")
    if cpu.arch:
        parts.append(cpu.arch)
    line = ", ".join(parts)
    return line + (f"; SIMD: {' '.join(cpu.simd)}" if cpu.simd else "")


def _ram_line(profile: HardwareProfile) -> str:
    if not profile.ram_total_bytes:
        return "unknown"
    line = f"{format_size(profile.ram_total_bytes)} total"
    if profile.ram_available_bytes is not None:
        line += f", {format_size(profile.ram_available_bytes)} available"
    if profile.ram_bandwidth_gbs:
        line += f"; {profile.ram_bandwidth_gbs:g} GB/s ({profile.ram_bandwidth_source})"
    return line


def _gpu_lines(gpu: GpuDevice) -> list[str]:
    memory = f"{format_size(gpu.memory_total_bytes)}{' unified' if gpu.unified_memory else ''}"
    if gpu.memory_free_bytes is not None:
        memory += f", {format_size(gpu.memory_free_bytes)} free"
    lines = [f"GPU {gpu.index}:    {gpu.name}, {memory}"]
    if gpu.usable_memory_bytes is not None:
        lines.append(
            f"  GPU may use {format_size(gpu.usable_memory_bytes)} ({gpu.usable_memory_source})"
        )
    if gpu.memory_bandwidth_gbs:
        lines.append(
            f"  bandwidth {gpu.memory_bandwidth_gbs:g} GB/s ({gpu.memory_bandwidth_source})"
        )
    details = [
        f"driver {gpu.driver_version}" if gpu.driver_version else "",
        f"CUDA {gpu.cuda_version}" if gpu.cuda_version else "",
        f"compute capability {gpu.compute_capability}" if gpu.compute_capability else "",
        f"drawing {gpu.power_draw_w:.1f} W" if gpu.power_draw_w is not None else "",
    ]
    if any(details):
        lines.append("  " + ", ".join(detail for detail in details if detail))
    if gpu.usable_by_build and gpu.backend:
        lines.append(f"  usable: yes, through {backend_label(gpu.backend)}")
    else:
        lines.append(f"  usable: no, {gpu.unusable_reason or 'no backend for it'}")
    return lines


def describe(profile: HardwareProfile, models_dir: Path | None = None) -> list[str]:
    """The human-readable summary ``homefire hw`` prints."""
    lines = [_heading(profile), f"OS:       {profile.os}", f"CPU:      {_cpu_line(profile)}"]
    lines.append(f"RAM:      {_ram_line(profile)}")
    for gpu in profile.gpus:
        lines.extend(_gpu_lines(gpu))
    if not profile.gpus:
        lines.append("GPUs:     none found")
    backends = ", ".join(backend_label(backend) for backend in profile.backends)
    build = f" (llama-cpp-python {profile.llama_cpp_version})" if profile.llama_cpp_version else ""
    lines.append(f"Backends: {backends}{build}")
    if profile.disk_free_bytes is not None:
        where = f" at {models_dir}" if models_dir else ""
        lines.append(f"Disk:     {format_size(profile.disk_free_bytes)} free{where}")
    if profile.absent:
        lines.append("Not read:")
        lines.extend(f"  {part.part}: {part.reason}" for part in profile.absent)
    if profile.sources:
        lines.append("Sources:")
        lines.extend(f"  {source}" for source in profile.sources)
    return lines
