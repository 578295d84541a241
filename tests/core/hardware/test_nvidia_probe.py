"""NVIDIA through NVML, driven by an NVML double that answers from recorded nvidia-smi outputs."""

from __future__ import annotations

import pynvml
import pytest

from app.core.hardware.nvidia import import_pynvml, probe_nvidia, read_gpu_energy
from tests.core.hardware.recorded import RecordedNvml, rtx_4090, two_h100

MIB = 1024**2


def test_an_rtx_4090_reports_its_recorded_memory_driver_and_power() -> None:
    nvml = RecordedNvml(rtx_4090())
    result = probe_nvidia(lambda: nvml)

    assert result.absent == ()
    assert result.value is not None
    (gpu,) = result.value
    assert gpu.vendor == "nvidia"
    assert gpu.name == "NVIDIA GeForce RTX 4090"
    assert gpu.memory_total_bytes == 24564 * MIB  # not 24576: the card reports 24564 MiB
    assert gpu.memory_free_bytes == 24214 * MIB
    assert gpu.memory_used_bytes == (24564 - 24214) * MIB  # NVML v1 counts reserved memory as used
    assert gpu.driver_version == "535.86.05"
    assert gpu.cuda_version == "12.2"
    assert gpu.compute_capability == "8.9"
    assert gpu.power_draw_w == pytest.approx(26.84)
    assert gpu.energy_mj is None  # the double, like pre-Volta cards, does not support the counter
    assert gpu.memory_bandwidth_gbs == 1008
    assert gpu.memory_bandwidth_source is not None
    assert gpu.memory_bandwidth_source.startswith("spec:")
    assert nvml.shutdowns == nvml.initialised == 1


def test_two_h100s_are_both_listed_with_their_own_memory_and_power() -> None:
    result = probe_nvidia(lambda: RecordedNvml(two_h100()))

    assert result.value is not None
    idle, load = result.value
    assert [idle.index, load.index] == [0, 1]
    assert idle.name == load.name == "NVIDIA H100 80GB HBM3"
    assert idle.memory_total_bytes == load.memory_total_bytes == 81559 * MIB
    assert idle.memory_free_bytes == 81081 * MIB
    assert load.memory_free_bytes == 61263 * MIB
    assert idle.power_draw_w == pytest.approx(69.85)
    assert load.power_draw_w == pytest.approx(629.45)
    assert idle.cuda_version == "13.1"
    assert idle.driver_version == "590.48.01"
    assert idle.compute_capability == "9.0"
    assert idle.memory_bandwidth_gbs == 3350  # the HBM3 part is the SXM5 board


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "NVML library (libnvidia-ml) was not found"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "installed but not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "no permission"),
        (pynvml.NVML_ERROR_UNKNOWN, "NVML could not start"),
    ],
)
def test_nvml_that_cannot_start_makes_the_part_absent_with_the_reason(
    code: int, expected: str
) -> None:
    result = probe_nvidia(lambda: RecordedNvml(init_error=code))

    assert result.value is None
    (part,) = result.absent
    assert part.part == "nvidia"
    assert expected in part.reason


def test_a_missing_nvidia_ml_py_package_is_an_absent_part() -> None:
    def no_module() -> RecordedNvml:
        raise ImportError("No module named 'pynvml'")

    result = probe_nvidia(no_module)

    assert result.value is None
    assert "nvidia-ml-py" in result.absent[0].reason


def test_the_real_nvml_on_a_machine_without_a_driver_reports_the_library_missing() -> None:
    nvml = import_pynvml()
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:
        pass
    else:
        nvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")

    result = probe_nvidia(import_pynvml)

    assert result.value is None
    assert result.absent[0].part == "nvidia"


def test_energy_readings_give_each_gpu_counter_and_power() -> None:
    machine = two_h100()
    machine.gpus[0].energy_mj = 1_000  # no recording holds a counter value; these are arbitrary
    result = read_gpu_energy(lambda: RecordedNvml(machine))

    assert result.value is not None
    first, second = result.value
    assert (first.index, first.energy_mj, first.power_draw_w) == (0, 1_000, pytest.approx(69.85))
    assert (second.index, second.energy_mj) == (1, None)  # unsupported -> None, not an error
    assert second.power_draw_w == pytest.approx(629.45)


def test_energy_readings_without_a_driver_are_absent_not_an_error() -> None:
    result = read_gpu_energy(lambda: RecordedNvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))

    assert result.value is None
    assert result.absent[0].part == "nvidia"
