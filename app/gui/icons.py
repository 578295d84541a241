"""Icons from ``resources/icons``: SVGs drawn in the palette's colour at every device pixel ratio.

The SVGs use ``currentColor`` so one file serves light and dark themes; each is rendered at 1×,
2× and 3× so they stay sharp on HiDPI screens.
"""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from app.core.storage.resources import resources_dir

_SIZES = (16, 20, 24, 32, 48)
_RATIOS = (1.0, 2.0, 3.0)


@cache
def _svg(name: str) -> str:
    return (resources_dir() / "icons" / f"{name}.svg").read_text(encoding="utf-8")


def icon(name: str, color: QColor | None = None) -> QIcon:
    """The icon ``name`` in ``color`` (default: its own colours, for the app icon)."""
    source = _svg(name)
    if color is not None:
        source = source.replace("currentColor", color.name())
    renderer = QSvgRenderer(QByteArray(source.encode()))
    result = QIcon()
    for size in _SIZES:
        for ratio in _RATIOS:
            pixels = round(size * ratio)
            pixmap = QPixmap(QSize(pixels, pixels))
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(painter, QRectF(0, 0, pixels, pixels))
            painter.end()
            pixmap.setDevicePixelRatio(ratio)
            result.addPixmap(pixmap)
    return result
