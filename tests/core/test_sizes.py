"""The one size formatter: binary units, at most three significant figures."""

from __future__ import annotations

import pytest

from app.core.sizes import GIB, KIB, MIB, format_size


@pytest.mark.parametrize(
    ("n_bytes", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (999, "999 B"),
        (1000, "0.98 KiB"),
        (1536, "1.50 KiB"),
        (347 * MIB, "347 MiB"),
        (999.7 * MIB, "0.98 GiB"),
        (int(12.34 * GIB), "12.3 GiB"),
        (24564 * MIB, "24.0 GiB"),
        (464 * GIB, "464 GiB"),
        (2 * 1024 * GIB, "2.00 TiB"),
        (int(9.999 * KIB), "10.0 KiB"),
    ],
)
def test_sizes_read_in_binary_units(n_bytes: float, text: str) -> None:
    assert format_size(n_bytes) == text


def test_a_rate_reads_with_the_same_units() -> None:
    assert f"{format_size(45.6 * MIB)}/s" == "45.6 MiB/s"
