"""The live GPU view samples NVML once a second with one open session."""

from __future__ import annotations

import pynvml

from app.core.hardware.nvidia import GpuMonitor
from tests.core.hardware.recorded import RecordedNvml, two_h100


def test_two_h100s_are_sampled_with_their_recorded_memory_and_power() -> None:
    machine = two_h100()
    nvml = RecordedNvml(machine)
    monitor, reason = GpuMonitor.open(lambda: nvml)
    assert monitor is not None
    assert reason is None
    first = monitor.sample()
    second = monitor.sample()
    assert [s.index for s in first] == [0, 1]
    for sample, gpu in zip(first, machine.gpus, strict=True):
        assert sample.name == gpu.name
        assert sample.memory_total_bytes == gpu.total_bytes
        assert sample.memory_used_bytes == gpu.total_bytes - gpu.free_bytes
        expected_w = None if gpu.power_mw is None else gpu.power_mw / 1000
        assert sample.power_draw_w == expected_w
    assert second == first
    assert nvml.initialised == 1  # one session for every sample
    monitor.close()
    assert nvml.shutdowns == 1


def test_without_a_driver_there_is_nothing_to_monitor_and_a_reason() -> None:
    nvml = RecordedNvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    monitor, reason = GpuMonitor.open(lambda: nvml)
    assert monitor is None
    assert reason is not None
    assert "library" in reason.lower()
