"""The app icon set rendered from the SVG: hicolor PNGs at their sizes and a readable ICNS."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from installers.icons import (
    HICOLOR_SIZES,
    ICNS_TYPES,
    IconError,
    icns_bytes,
    read_icns,
    write_icon_set,
)


def _png_size(data: bytes) -> tuple[int, int]:
    # IHDR is the first chunk: width and height follow the 8-byte signature and chunk header.
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def icon_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("icons")
    write_icon_set(out)
    return out


def test_every_hicolor_size_is_a_png_of_that_size(icon_dir: Path) -> None:
    for size in HICOLOR_SIZES:
        png = icon_dir / "hicolor" / f"{size}x{size}" / "apps" / "homefire.png"
        assert _png_size(png.read_bytes()) == (size, size)
    assert (icon_dir / "hicolor" / "scalable" / "apps" / "homefire.svg").is_file()


def test_rendered_icon_has_a_transparent_corner_and_a_drawn_centre(icon_dir: Path) -> None:
    image = QImage(str(icon_dir / "hicolor" / "256x256" / "apps" / "homefire.png"))
    assert image.pixelColor(0, 0).alpha() == 0
    assert image.pixelColor(128, 128).alpha() == 255


def test_icns_holds_one_png_per_macos_slot(icon_dir: Path) -> None:
    elements = read_icns((icon_dir / "homefire.icns").read_bytes())
    assert set(elements) == set(ICNS_TYPES.values())
    for size, kind in ICNS_TYPES.items():
        assert _png_size(elements[kind]) == (size, size)


def test_icns_rejects_a_size_macos_has_no_slot_for() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(24)
    with pytest.raises(IconError, match="no slot"):
        icns_bytes({48: png})


def test_icns_rejects_non_png_data() -> None:
    with pytest.raises(IconError, match="not a PNG"):
        icns_bytes({16: b"GIF89a"})


def test_truncated_icns_is_reported_not_misread() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(24)
    data = icns_bytes({16: png})
    with pytest.raises(IconError):
        read_icns(data[:-4])
