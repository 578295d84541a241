"""A small per-day bar chart, painted directly (QtCharts is not in PySide6-Essentials)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.gui.theme import ACCENT, muted


def _tokens(value: float) -> str:
    return f"{value:,.0f} tokens"


class DayBarChart(QWidget):
    """One bar a day of any series (tokens, dollars avoided); the title says what and whence."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dayChart")
        self._days: list[tuple[date, float]] = []
        self._title = "tokens per day (measured)"
        self._format: Callable[[float], str] = _tokens
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_days(
        self,
        days: Sequence[tuple[date, float]],
        title: str = "tokens per day (measured)",
        value_format: Callable[[float], str] = _tokens,
    ) -> None:
        self._days = list(days)
        self._title = title
        self._format = value_format
        self.setToolTip(
            "\n".join(f"{d.isoformat()}: {value_format(n)}" for d, n in self._days[-31:])
        )
        self.update()

    @property
    def days(self) -> list[tuple[date, float]]:
        return list(self._days)

    def sizeHint(self) -> QSize:
        return QSize(600, 170)

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        grey = muted(self.palette())
        text_height = self.fontMetrics().height()
        area = QRectF(self.rect()).adjusted(8, text_height + 8, -8, -(text_height + 6))
        if not self._days:
            painter.setPen(grey)
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignCenter, "No usage in this range yet"
            )
            return
        peak = max(n for _, n in self._days) or 1
        slot = area.width() / len(self._days)
        bar = max(min(slot * 0.7, 36.0), 1.0)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(ACCENT)
        for i, (_day, tokens) in enumerate(self._days):
            height = area.height() * tokens / peak
            x = area.left() + i * slot + (slot - bar) / 2
            painter.drawRoundedRect(QRectF(x, area.bottom() - height, bar, height), 2, 2)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        painter.drawText(
            QRectF(area.left(), 0, area.width(), text_height + 4),
            Qt.AlignmentFlag.AlignLeft,
            f"{self._title} · peak {self._format(peak)}",
        )
        painter.setPen(grey)
        step = max(1, len(self._days) // 8)
        for i in range(0, len(self._days), step):
            x = area.left() + i * slot
            painter.drawText(
                QRectF(x, area.bottom() + 4, max(slot * step, 40), text_height),
                Qt.AlignmentFlag.AlignLeft,
                self._days[i][0].strftime("%d %b"),
            )
