"""The Hardware page shows the detected machine and planning profiles; Usage counts a real reply
and writes its settings once the user stops changing them."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.chats.conversation import ChatSettings
from app.core.sizes import format_size
from app.gui.desktop import Desktop
from app.gui.hardware.hardware_page import HardwarePage
from app.gui.main_window import MainWindow
from app.gui.usage.usage_page import UsagePage
from tests.gui.conftest import LoadModel


def test_the_detected_machine_and_a_planning_profile(qtbot: QtBot, window: MainWindow) -> None:
    page = window.hardware
    qtbot.waitUntil(lambda: "This machine (detected now" in page.details.text(), timeout=20_000)
    assert "<b>CPU</b>" in page.details.text()
    assert "GiB" in page.ram_bar.format()
    planning = page.chooser.itemText(1)
    with qtbot.waitSignal(page.profile_shown) as shown:
        page.chooser.setCurrentIndex(1)
    assert shown.args[0] == planning
    assert "planning profile" in page.details.text()


def test_a_chat_reply_is_counted_on_the_usage_page_and_exported(
    qtbot: QtBot, window: MainWindow, load_model: LoadModel, tiny_model: Path, tmp_path: Path
) -> None:
    load_model(tiny_model)
    chat = window.chat
    assert chat.conversation is not None
    chat._store.update_settings(chat.conversation.id, ChatSettings(temperature=0, max_tokens=7))
    chat.open_conversation(chat.conversation.id)
    chat.composer.setPlainText("Hello")
    with qtbot.waitSignal(chat.reply_finished, timeout=30_000):
        qtbot.keyClick(chat.composer, Qt.Key.Key_Return)
    assert "Today " in window.status.usage.text()
    assert "Today 0 tokens" not in window.status.usage.text()

    usage = window.usage
    with qtbot.waitSignal(usage.report_shown, timeout=10_000) as shown:
        usage.range.setCurrentText("Today")
    report = shown.args[0]
    assert report.totals.generations == 1
    assert report.totals.tokens.completion == 7
    assert f"{report.totals.tokens.total:,}</b> tokens counted" in usage.totals.text()
    assert "avoided vs" in usage.totals.text()
    assert usage.models.item(0, 0).text() == "tiny-chatml"
    assert sum(n for _day, n in usage.chart.days) == report.totals.tokens.total
    usage.chart_series.setCurrentIndex(1)  # dollars avoided against the first baseline
    baseline = report.baselines[0].id
    dollars = sum(value for _day, value in usage.chart.days)
    assert dollars == pytest.approx(float(report.cost_avoided(report.totals)[baseline]))
    assert dollars > 0

    usage.hardware_cost.setValue(2000)
    assert "months" in usage.break_even.text() or "never" in usage.break_even.text()

    target = tmp_path / "usage.csv"
    usage.export(target)
    qtbot.waitUntil(target.exists, timeout=10_000)
    qtbot.waitUntil(lambda: len(target.read_text().splitlines()) == 2, timeout=10_000)
    (row,) = list(csv.DictReader(target.open()))
    assert row["model"] == "tiny-chatml"
    assert row["completion_tokens"] == "7"


def test_live_gpu_memory_is_shown_from_nvml(qtbot: QtBot, desktop: Desktop) -> None:
    from tests.core.hardware.recorded import RecordedNvml, rtx_4090

    machine = rtx_4090()
    nvml = RecordedNvml(machine)
    page = HardwarePage(desktop, gpu_loader=lambda: nvml)
    qtbot.addWidget(page)
    gpu = machine.gpus[0]
    used = gpu.total_bytes - gpu.free_bytes
    qtbot.waitUntil(lambda: "GPU 0" in page.gpu_label.text(), timeout=5_000)
    assert gpu.name in page.gpu_label.text()
    in_use = f"{format_size(used)} of {format_size(gpu.total_bytes)} in use"
    assert in_use in page.gpu_label.text()
    page.shutdown()
    assert nvml.shutdowns == 1


def test_without_an_nvidia_driver_the_page_says_why(qtbot: QtBot, desktop: Desktop) -> None:
    import pynvml

    from tests.core.hardware.recorded import RecordedNvml

    page = HardwarePage(
        desktop, gpu_loader=lambda: RecordedNvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    )
    qtbot.addWidget(page)
    assert "nothing to measure" in page.gpu_label.text()
    page.shutdown()


def test_stepping_the_costs_writes_once_after_the_user_pauses(
    qtbot: QtBot, desktop: Desktop
) -> None:
    page = UsagePage(desktop)
    qtbot.addWidget(page)
    store = desktop.services.usage_preferences
    for step in range(1, 21):  # twenty arrow-key steps
        page.hardware_cost.setValue(100 * step)
    page.kwh_price.setValue(0.25)
    assert not store.path.exists()  # nothing written while the user is stepping
    qtbot.waitUntil(lambda: store.load().hardware_cost == Decimal(2000), timeout=10_000)
    assert store.load().electricity_price_per_kwh == Decimal("0.25")
    page.shutdown()


def test_a_change_not_yet_written_is_saved_at_quit(qtbot: QtBot, desktop: Desktop) -> None:
    page = UsagePage(desktop)
    qtbot.addWidget(page)
    page.hardware_cost.setValue(1500)
    page.shutdown()
    assert desktop.services.usage_preferences.load().hardware_cost == Decimal(1500)
