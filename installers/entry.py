"""The frozen app's entry point: ``homefire`` in the Linux package and the macOS app.

The shipped llama.cpp is built without ``-march=native`` but, on x86-64, still for the AVX2 /
FMA / F16C / BMI2 baseline (ggml's default once GGML_NATIVE is off). On an older CPU the first
matrix multiply would die with SIGILL and no message, so say so before anything loads.
"""

from __future__ import annotations

import multiprocessing
import platform
import sys
from pathlib import Path

# The x86-64 instruction-set extensions the shipped ggml CPU backend is compiled to use.
REQUIRED_X86_FLAGS: tuple[str, ...] = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2")


def missing_cpu_flags(cpuinfo: str, required: tuple[str, ...] = REQUIRED_X86_FLAGS) -> list[str]:
    """The ``required`` flags absent from the first ``flags`` line of ``/proc/cpuinfo`` text;
    empty when the text has no flags line (not Linux x86, or an unusual kernel: let it run)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            present = set(value.split())
            return [flag for flag in required if flag not in present]
    return []


def _cpu_is_supported() -> bool:
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return True
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True
    missing = missing_cpu_flags(cpuinfo)
    if missing:
        print(  # noqa: T201
            "homefire: this CPU lacks " + ", ".join(missing) + ", which this build of Homefire "
            "needs (an x86-64 CPU from 2013 or later: Intel Haswell, AMD Excavator / Zen or newer). "
            "Run Homefire from source instead (see the README, section From source).",
            file=sys.stderr,
        )
        return False
    return True


def main() -> None:
    # Chat templates render in children of multiprocessing's fork server; in a frozen app the
    # executable is this one, and freeze_support() lets such a child run its task and exit.
    multiprocessing.freeze_support()
    if not _cpu_is_supported():
        sys.exit(1)
    from app.__main__ import main as app_main

    app_main()


if __name__ == "__main__":
    main()
