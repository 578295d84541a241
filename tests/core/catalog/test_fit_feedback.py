"""The closed loop: a real load is measured, recorded beside its estimate, and corrects the next one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import run
from app.core.catalog.calibration import FitCalibration
from app.core.engine.request import ChatMessage, GenerationRequest, Sampling
from app.core.library.model import LibraryModel
from app.core.load_options import LoadOptions
from app.core.services import AppServices


def record(cal: FitCalibration, predicted: int, measured: int) -> int:
    return cal.record_load(
        model_path=Path("/m.gguf"), model_name="m", n_ctx=2048, kv_cache_type="f16",
        flash_attn=False, n_gpu_layers=0,
        predicted_ram_bytes=predicted, measured_ram_bytes=measured,
    )  # fmt: skip


def test_no_loads_no_correction(tmp_path: Path) -> None:
    assert FitCalibration(tmp_path / "db.sqlite3").correction() is None


def test_correction_is_the_median_ratio_of_plausible_loads(tmp_path: Path) -> None:
    cal = FitCalibration(tmp_path / "db.sqlite3")
    for measured in (110, 120, 130):
        record(cal, 100, measured)
    record(cal, 100, 900)  # another program grew meanwhile: not a lesson about the formula
    correction = cal.correction()
    assert correction is not None
    assert correction.factor == pytest.approx(1.2)
    assert correction.loads == 3
    assert correction.basis == "3 loads measured here"


def test_speed_keeps_the_fastest_reply(tmp_path: Path) -> None:
    cal = FitCalibration(tmp_path / "db.sqlite3")
    load = record(cal, 100, 100)
    cal.record_speed(load, 50.0, None)
    cal.record_speed(load, 40.0, None)
    (measurement,) = cal.measurements()
    assert measurement.measured_tokens_per_s == 50.0


def test_a_real_load_is_measured_and_shown_by_fit(
    starter_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    services = AppServices.create()
    try:
        model = LibraryModel(
            name="starter", path=starter_model, size_bytes=starter_model.stat().st_size,
            source="file", owned=False,
        )  # fmt: skip
        info = services.load_model(model, LoadOptions(model.path, n_ctx=2048))
        request = GenerationRequest(
            prompt="The days of the week are", max_tokens=24, sampling=Sampling(temperature=0)
        )
        services.pool.default().engine.generate(request).result()
        (measurement,) = services.fit_feedback.calibration.measurements()
        assert services.fit_feedback.last_load() == measurement
    finally:
        services.close()
    assert measurement.measured_ram_bytes == info.rss_growth_bytes
    assert measurement.n_ctx == 2048
    # The estimator is calibrated on this model: the loop records it within the bound.
    assert abs(measurement.ram_error) < 0.10
    assert measurement.measured_tokens_per_s is not None
    assert measurement.measured_tokens_per_s > 0

    assert run(["fit", str(starter_model), "--ctx", "2048", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (here,) = report["measured_here"]
    assert here["measured_ram_bytes"] == info.rss_growth_bytes
    assert "1 load measured here" in report["variants"][0]["memory_basis"]

    assert run(["fit", str(starter_model), "--ctx", "2048"]) == 0
    assert "measured here" in capsys.readouterr().out


def test_usage_of_chat_and_endpoint_is_recorded(tiny_model: Path) -> None:
    services = AppServices.create()
    try:
        model = LibraryModel(name="tiny", path=tiny_model, size_bytes=1, source="file", owned=False)
        services.load_model(model, LoadOptions(model.path, n_ctx=256))
        request = GenerationRequest(
            messages=(ChatMessage("user", "Hello"),), max_tokens=5,
            sampling=Sampling(temperature=0), source="chat",
        )  # fmt: skip
        result = services.pool.default().engine.generate(request).result()
        totals = services.ledger.totals()
    finally:
        services.close()
    assert totals.generations == 1
    assert totals.tokens.completion == result.completion_tokens
    assert totals.tokens.prompt == result.prompt_tokens
