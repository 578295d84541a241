"""This machine's RAM bandwidth: a real copy benchmark, cached per CPU, refined by decoding here."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from app.core.catalog.calibration import FitCalibration
from app.core.catalog.decode_speed import (
    bandwidth_from_decoding,
    bytes_read_per_token,
    machine_bandwidth,
)
from app.core.catalog.estimator import ModelFacts
from app.core.catalog.gguf_header import read_local_model
from app.core.catalog.recommend import Variant, recommend
from app.core.hardware.bandwidth import (
    BUFFER_BYTES,
    CACHE_FILE,
    copy_bandwidth,
    copy_bandwidth_in_child,
    measured_copy_bandwidth,
)
from app.core.hardware.builtin_profiles import builtin_profiles
from app.core.hardware.profile import CpuInfo, HardwareProfile
from app.core.sizes import GIB, MIB
from tests.fixtures.gguf_writer import write_tiny_model

CPU = CpuInfo(brand="Test CPU 9000", physical_cores=4, logical_cores=8, arch="x86_64")


def _detected(cpu: CpuInfo = CPU) -> HardwareProfile:
    return HardwareProfile(
        name="this machine",
        source="detected",
        os="linux",
        cpu=cpu,
        ram_total_bytes=16 * GIB,
        ram_available_bytes=12 * GIB,
    )


class CountingBenchmark:
    """The real benchmark on a small buffer, counting how often it runs."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, threads: int) -> float:
        self.runs += 1
        return copy_bandwidth(buffer_bytes=16 * MIB, runs=2, threads=threads)


def test_the_copy_benchmark_returns_a_positive_measured_figure(tmp_path: Path) -> None:
    assert copy_bandwidth(buffer_bytes=16 * MIB, runs=2) > 0
    assert copy_bandwidth(buffer_bytes=16 * MIB + 3, runs=2, threads=3) > 0
    measured = measured_copy_bandwidth(tmp_path / CACHE_FILE, CPU)  # the real default size
    assert measured.gbs > 0
    assert measured.bandwidth.source.startswith("measured: copy benchmark")


def test_the_measurement_is_cached_and_reused(tmp_path: Path) -> None:
    cache = tmp_path / CACHE_FILE
    bench = CountingBenchmark()
    first = measured_copy_bandwidth(cache, CPU, bench)
    second = measured_copy_bandwidth(cache, CPU, bench)
    assert bench.runs == 1
    assert second == first
    stored = json.loads(cache.read_text())
    assert stored["gbs"] == first.gbs
    assert "Test CPU 9000" in stored["cpu"]


def test_another_cpu_measures_again(tmp_path: Path) -> None:
    cache = tmp_path / CACHE_FILE
    bench = CountingBenchmark()
    measured_copy_bandwidth(cache, CPU, bench)
    other = CpuInfo(brand="Test CPU 9900", physical_cores=8, logical_cores=16, arch="x86_64")
    again = measured_copy_bandwidth(cache, other, bench)
    assert bench.runs == 2
    assert "Test CPU 9900" in again.cpu
    measured_copy_bandwidth(cache, other, bench)
    assert bench.runs == 2


@pytest.mark.parametrize("content", ["not json", '{"schema": 1, "gbs": -3}', "[]", '{"schema": 9}'])
def test_a_broken_cache_is_measured_over(tmp_path: Path, content: str) -> None:
    cache = tmp_path / CACHE_FILE
    cache.write_text(content)
    bench = CountingBenchmark()
    assert measured_copy_bandwidth(cache, CPU, bench).gbs > 0
    assert bench.runs == 1


def test_this_machine_gets_a_speed_estimate_everywhere(tmp_path: Path) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf")
    facts = ModelFacts.from_header(read_local_model(path))
    variant = Variant("F16", facts, path.stat().st_size)
    unknown = _detected()
    (before,) = recommend(unknown, [variant], 256)
    assert before.tokens_per_s is None  # what `homefire fit` showed as "-"

    profile = machine_bandwidth(unknown, tmp_path, None)
    assert profile.ram_bandwidth_gbs
    assert profile.ram_bandwidth_gbs > 0
    assert (profile.ram_bandwidth_source or "").startswith("measured")
    (after,) = recommend(profile, [variant], 256)
    assert after.tokens_per_s is not None
    assert after.tokens_per_s > 0


def test_planning_profiles_and_spec_figures_are_left_alone(tmp_path: Path) -> None:
    planned = builtin_profiles()[-1]
    assert machine_bandwidth(planned, tmp_path, None) is planned
    assert not (tmp_path / CACHE_FILE).exists()


def test_decoding_measured_here_is_preferred_and_reproduced(tmp_path: Path) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf")
    facts = ModelFacts.from_header(read_local_model(path))
    calibration = FitCalibration(tmp_path / "db.sqlite3")
    try:
        assert bandwidth_from_decoding(calibration) is None
        load = calibration.record_load(
            model_path=path, model_name="tiny", n_ctx=256, kv_cache_type="f16",
            flash_attn=False, n_gpu_layers=0, predicted_ram_bytes=1, measured_ram_bytes=1,
        )  # fmt: skip
        calibration.record_speed(load, 4000.0, None)
        gpu_load = calibration.record_load(
            model_path=path, model_name="tiny", n_ctx=256, kv_cache_type="f16",
            flash_attn=False, n_gpu_layers=-1, predicted_ram_bytes=1, measured_ram_bytes=1,
        )  # fmt: skip
        calibration.record_speed(gpu_load, 99999.0, None)  # a GPU's rate says nothing of RAM
        gone = calibration.record_load(
            model_path=tmp_path / "deleted.gguf", model_name="gone", n_ctx=256,
            kv_cache_type="f16", flash_attn=False, n_gpu_layers=0, predicted_ram_bytes=1,
            measured_ram_bytes=1,
        )  # fmt: skip
        calibration.record_speed(gone, 99999.0, None)

        # A model this small is bound by arithmetic, not memory: its rate is no bandwidth, and
        # this machine's figure stays the copy benchmark's.
        assert bandwidth_from_decoding(calibration) is None
        copied = machine_bandwidth(_detected(), tmp_path / "copy", calibration)
        assert (copied.ram_bandwidth_source or "").startswith("measured: copy benchmark")
        # Counted as if it were big enough (the rule for a model reading gigabytes per token):
        learned = bandwidth_from_decoding(calibration, min_bytes_per_token=0)
        assert learned is not None
        assert learned.source.startswith("measured from decoding: tiny at 4000 tok/s")
        assert learned.gbs == pytest.approx(bytes_read_per_token(facts) * 4000 / 1e9 / 0.6)

        profile = machine_bandwidth(_detected(), tmp_path, calibration, min_bytes_per_token=0)
        assert (profile.ram_bandwidth_source or "").startswith("measured from decoding")
        assert not (tmp_path / CACHE_FILE).exists()  # no benchmark needed
        # The estimate for the model that was timed is the rate it was timed at.
        (verdict,) = recommend(profile, [Variant("F16", facts, path.stat().st_size)], 256)
        assert verdict.tokens_per_s == pytest.approx(4000, rel=0.01)
    finally:
        calibration.close()


def test_services_give_this_machine_with_a_bandwidth_and_cache_it() -> None:
    from app.core.services import AppServices

    with AppServices.create() as services:
        first = services.this_machine()
        cache = services.paths.data_dir / CACHE_FILE
        assert first.ram_bandwidth_gbs
        # Detection reads no RAM speed on any OS, so this machine's figure is always measured.
        assert (first.ram_bandwidth_source or "").startswith("measured: copy benchmark")
        assert cache.exists()
        assert services.this_machine().ram_bandwidth_gbs == first.ram_bandwidth_gbs
        # Asking about the machine never creates the database.
        assert not services.paths.database_file.exists()


def test_the_copy_runs_in_a_child_so_a_load_measured_meanwhile_is_not_skewed() -> None:
    # A model load measures this process's resident-memory growth to learn the fit correction;
    # the benchmark's buffers allocated and freed here during it would halve that measurement.
    me = psutil.Process()
    before = me.memory_info().rss

    gbs = copy_bandwidth_in_child(1)

    assert gbs > 0
    assert me.memory_info().rss - before < BUFFER_BYTES // 2
