"""The app icon in every size a launcher asks for, rendered from the same SVG the desktop app
uses for its window (``resources/icons/homefire.svg``), so menu, dock and window agree.

Linux wants PNGs in the hicolor theme sizes; macOS wants one ``.icns`` container. Both come from
the one SVG, rendered with QtSvg (part of PySide6-Essentials), so no ImageMagick or ``iconutil``
is needed and the Linux build machine can produce the Mac icon too.

Run inside a venv that has PySide6: ``python -m installers.icons OUT_DIR``.
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Mapping
from pathlib import Path

SVG_PATH = Path(__file__).resolve().parent.parent / "resources" / "icons" / "homefire.svg"

# The sizes the freedesktop hicolor theme defines for apps that ship PNGs.
HICOLOR_SIZES: tuple[int, ...] = (16, 24, 32, 48, 64, 128, 256, 512)

# ICNS element types that carry PNG data, by pixel size. ic11..ic14 are the @2x variants of
# 16/32/128/256 and hold the same pixels as icp5/icp6/ic08/ic09, so each size is stored once
# under the type every macOS since 10.8 reads.
ICNS_TYPES: Mapping[int, bytes] = {
    16: b"icp4",
    32: b"icp5",
    64: b"icp6",
    128: b"ic07",
    256: b"ic08",
    512: b"ic09",
    1024: b"ic10",
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class IconError(Exception):
    """The SVG could not be rendered or a PNG is not what the container expects."""


def icns_bytes(pngs: Mapping[int, bytes]) -> bytes:
    """An ICNS file holding ``pngs`` (pixel size -> PNG bytes), largest first as iconutil does."""
    elements = []
    for size in sorted(pngs, reverse=True):
        if size not in ICNS_TYPES:
            raise IconError(f"ICNS has no slot for a {size}px image")
        png = pngs[size]
        if not png.startswith(PNG_SIGNATURE):
            raise IconError(f"the {size}px image is not a PNG")
        elements.append(ICNS_TYPES[size] + struct.pack(">I", len(png) + 8) + png)
    body = b"".join(elements)
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def read_icns(data: bytes) -> dict[bytes, bytes]:
    """The elements of an ICNS file by type; raises IconError when the lengths do not add up."""
    if data[:4] != b"icns" or struct.unpack(">I", data[4:8])[0] != len(data):
        raise IconError("not an ICNS file, or its length field is wrong")
    elements: dict[bytes, bytes] = {}
    offset = 8
    while offset < len(data):
        kind = data[offset : offset + 4]
        (length,) = struct.unpack(">I", data[offset + 4 : offset + 8])
        if length < 8 or offset + length > len(data):
            raise IconError(f"ICNS element {kind!r} overruns the file")
        elements[kind] = data[offset + 8 : offset + length]
        offset += length
    return elements


def render_png(svg: Path, size: int) -> bytes:
    """The SVG drawn on a transparent ``size``x``size`` canvas, as PNG bytes."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise IconError(f"{svg} is not an SVG Qt can render")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor(0, 0, 0, 0))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    # The stubs type the format as bytes; PySide6 6.12 accepts only str at run time.
    if not image.save(buffer, "PNG"):  # type: ignore[call-overload]
        raise IconError(f"Qt could not encode a {size}px PNG")
    buffer.close()
    return bytes(data.data())


def write_icon_set(out_dir: Path, svg: Path = SVG_PATH) -> None:
    """``out_dir/hicolor/NxN/apps/homefire.png`` for every hicolor size, plus ``homefire.icns``
    and a copy of the SVG for ``hicolor/scalable``."""
    from PySide6.QtGui import QGuiApplication

    # QSvgRenderer needs a GUI application for its font and image machinery.
    app = QGuiApplication.instance() or QGuiApplication(
        ["homefire-icons", "-platform", "offscreen"]
    )
    pngs = {size: render_png(svg, size) for size in sorted(set(HICOLOR_SIZES) | set(ICNS_TYPES))}
    for size in HICOLOR_SIZES:
        target = out_dir / "hicolor" / f"{size}x{size}" / "apps" / "homefire.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(pngs[size])
    scalable = out_dir / "hicolor" / "scalable" / "apps" / "homefire.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    scalable.write_bytes(svg.read_bytes())
    (out_dir / "homefire.icns").write_bytes(icns_bytes({s: pngs[s] for s in ICNS_TYPES}))
    del app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render Homefire's icons from the SVG.")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        write_icon_set(args.out_dir)
    except IconError as exc:
        print(f"icons: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
