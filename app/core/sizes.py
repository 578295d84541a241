"""Sizes of files and memory as people read them, in binary units everywhere.

llama.cpp, the OS and GPU drivers count memory in MiB and GiB; file sizes use the same units so
a model's size and the memory it needs compare at a glance on every page and in every command.
"""

from __future__ import annotations

KIB = 2**10
MIB = 2**20
GIB = 2**30
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_size(n_bytes: float) -> str:
    """``512 B``, ``1.50 KiB``, ``347 MiB``, ``12.3 GiB``: three significant figures at most."""
    value = float(n_bytes)
    unit = 0
    while abs(value) >= 999.5 and unit < len(_UNITS) - 1:
        # 1000 rather than 1024 keeps four digits off the page ("0.98 GiB", not "1000 MiB").
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{value:.0f} B"
    if abs(value) < 9.995:
        return f"{value:.2f} {_UNITS[unit]}"
    if abs(value) < 99.95:
        return f"{value:.1f} {_UNITS[unit]}"
    return f"{value:.0f} {_UNITS[unit]}"
