"""``sysctl`` output on macOS: one ``key: value`` line per setting."""

from __future__ import annotations

from app.core.errors import HardwareProbeError
from app.core.hardware.command import CommandRunner
from app.core.hardware.probe import ProbeResult


def parse_sysctl(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key and " " not in key.strip():
            values[key.strip()] = value.strip()
    return values


def sysctl_int(values: dict[str, str], key: str) -> int | None:
    raw = values.get(key, "").strip()
    return int(raw) if raw.isdigit() else None


def read_sysctl(runner: CommandRunner) -> ProbeResult[dict[str, str]]:
    """Everything ``sysctl -a`` prints, read once and shared by the CPU and Apple GPU probes."""
    try:
        text = runner(["sysctl", "-a"])
    except HardwareProbeError as exc:
        return ProbeResult.missing("sysctl", exc.user_message)
    values = parse_sysctl(text)
    if not values:
        return ProbeResult.missing("sysctl", "sysctl printed nothing readable")
    return ProbeResult(values)
