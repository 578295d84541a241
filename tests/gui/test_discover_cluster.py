"""Discover plans a model across machines: the cluster's verdict beside this machine's."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pytestqt.qtbot import QtBot

from app.core.services import AppServices
from app.gui.desktop import Desktop
from app.gui.discover.discover_page import CLUSTER_COLUMN, DiscoverPage
from tests.fixtures.rpc_workers import require_rpc, workers

MAC_256 = "Mac Studio M3 Ultra 256GB"


@pytest.fixture(scope="module")
def worker_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real `homefire worker` on 127.0.0.1 for the module's tests."""
    require_rpc()
    with workers(tmp_path_factory.mktemp("worker-home"), 1) as (worker,):
        yield worker.address


@pytest.fixture
def discover(qtbot: QtBot, desktop: Desktop) -> DiscoverPage:
    page = DiscoverPage(desktop)
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: page._profile is not None, timeout=30_000)
    return page


def _show(qtbot: QtBot, page: DiscoverPage, name: str) -> None:
    row = next(r for r in range(page.models.count()) if page.models.item(r).text().startswith(name))
    if page.models.currentRow() == row:  # shown already (the first model is, at start)
        return
    with qtbot.waitSignal(page.verdicts_shown, timeout=20_000):
        page.models.setCurrentRow(row)


def _row(page: DiscoverPage, quant: str) -> int:
    return next(r for r in range(page.table.rowCount()) if page.table.item(r, 1).text() == quant)


def test_a_planning_cluster_shows_its_verdict_beside_this_machines(
    qtbot: QtBot, discover: DiscoverPage
) -> None:
    _show(qtbot, discover, "GLM-5.2")
    assert discover.table.isColumnHidden(CLUSTER_COLUMN)
    assert not discover.cluster_verdict.isVisibleTo(discover)

    discover.plan_with.setCurrentIndex(discover.plan_with.findText(f"+ 2 × {MAC_256}"))
    assert not discover.table.isColumnHidden(CLUSTER_COLUMN)
    assert discover.cluster_verdict.isVisibleTo(discover)
    text = discover.cluster_verdict.text()
    assert text.startswith("Across 3 machines: UD-IQ2_M fits across 3 machines: ")
    assert text.endswith(" on workers (estimated).")

    two_bit = _row(discover, "UD-IQ2_M")
    # This machine's verdict stays in its column; the cluster's is beside it.
    assert discover.table.item(two_bit, 3).text() == "does not fit"
    cluster_cell = discover.table.item(two_bit, CLUSTER_COLUMN)
    assert cluster_cell.text().startswith("★ fits, ~")
    assert "tok/s" in cluster_cell.text()
    assert "fits across 3 machines" in cluster_cell.toolTip()
    assert "estimated" in cluster_cell.toolTip()
    eight_bit = _row(discover, "Q8_0")
    assert discover.table.item(eight_bit, CLUSTER_COLUMN).text() == "does not fit"

    # Another model is planned across the same cluster.
    _show(qtbot, discover, "GLM-4.6")
    assert discover.cluster_verdict.text().startswith("Across 3 machines: ")
    assert discover.table.item(0, CLUSTER_COLUMN).text()

    discover.plan_with.setCurrentIndex(0)
    assert discover.table.isColumnHidden(CLUSTER_COLUMN)
    assert not discover.cluster_verdict.isVisibleTo(discover)


def test_this_machine_gets_a_speed_for_every_variant_that_fits(
    qtbot: QtBot, discover: DiscoverPage
) -> None:
    profile = discover._profile
    assert profile is not None
    assert profile.ram_bandwidth_gbs
    assert (profile.ram_bandwidth_source or "").startswith(("measured", "spec", "assumed"))
    _show(qtbot, discover, "Gemma 3 270M")
    fitting = [
        r
        for r in range(discover.table.rowCount())
        if discover.table.item(r, 3).text() != "does not fit"
    ]
    assert fitting
    for row in fitting:
        assert discover.table.item(row, 4).text().endswith("tok/s")


@contextmanager
def _page_with_workers(qtbot: QtBot, workers: list[str]) -> Iterator[DiscoverPage]:
    services = AppServices.create()
    services.settings.engine.workers = workers
    services.settings_store.save(services.settings)
    desktop = Desktop.create(services)
    try:
        page = DiscoverPage(desktop)
        qtbot.addWidget(page)
        qtbot.waitUntil(lambda: page._profile is not None, timeout=30_000)
        yield page
    finally:
        desktop.close()


def test_the_workers_in_settings_are_planned_with_their_reported_memory(
    qtbot: QtBot, worker_address: str
) -> None:
    with _page_with_workers(qtbot, [worker_address]) as discover:
        # Configured workers are what Discover plans with from the start.
        assert discover.plan_with.currentText() == "+ the workers in settings (1)"
        qtbot.waitUntil(lambda: bool(discover._live_workers), timeout=30_000)
        _show(qtbot, discover, "Qwen3 0.6B")
        assert not discover.table.isColumnHidden(CLUSTER_COLUMN)
        assert discover.cluster_verdict.text().startswith("Across 2 machines: ")
        cells = [
            discover.table.item(r, CLUSTER_COLUMN).text() for r in range(discover.table.rowCount())
        ]
        assert any(c.startswith(("★ fits", "fits")) for c in cells)


def test_workers_in_settings_that_do_not_answer_are_said_in_words(qtbot: QtBot) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    with _page_with_workers(qtbot, [address]) as discover:
        assert discover.plan_with.currentIndex() == 1
        qtbot.waitUntil(lambda: address in discover.cluster_verdict.text(), timeout=30_000)
        assert discover.cluster_verdict.isVisibleTo(discover)
        assert discover.table.isColumnHidden(CLUSTER_COLUMN)
