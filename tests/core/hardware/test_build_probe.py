"""Which backends the installed llama-cpp-python can drive, and what a GPU it cannot use shows."""

from __future__ import annotations

import re

import pytest

from app.core.hardware.build import (
    BuildDevice,
    BuildFacts,
    interpret_build,
    load_build_facts,
    probe_build,
    registry_names_from_system_info,
)
from app.core.hardware.detect import mark_usability
from app.core.hardware.profile import GpuDevice
from tests.core.hardware.recorded import fixture


def _system_info_line(recording: str) -> str:
    return next(line for line in fixture(recording).splitlines() if line.startswith("system_info:"))


def test_the_installed_build_is_read_through_the_ggml_registry() -> None:
    pytest.importorskip("llama_cpp")
    facts = load_build_facts()
    info = interpret_build(facts)

    assert facts.registry is not None  # read through ctypes, not guessed from the text
    assert "CPU" in facts.registry
    assert "cpu" in info.backends
    assert any(device.kind == "cpu" for device in info.devices)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", info.version)
    # The registry and the binding agree: a GPU backend exactly when offload is supported.
    assert info.gpu_offload == (set(info.backends) != {"cpu"})


def test_a_recorded_metal_build_is_recognised_from_its_system_info() -> None:
    line = _system_info_line("mac-studio-m3-ultra-512gb.llama-metal-init.txt")

    assert registry_names_from_system_info(line) == ("MTL", "CPU")
    facts = BuildFacts("0.3.36", True, None, (), line)
    assert interpret_build(facts).backends == ("cpu", "metal")


def test_registry_names_map_to_backends_and_unknown_ones_are_ignored() -> None:
    facts = BuildFacts("x", True, ("CUDA", "Vulkan", "BLAS", "RPC", "CPU"), (), "")

    assert interpret_build(facts).backends == ("cpu", "cuda", "vulkan")


def test_an_rpc_only_build_offers_no_gpu_offload() -> None:
    # The binding says "offload supported" for a CPU build with the RPC backend compiled in.
    facts = BuildFacts("x", True, ("RPC", "CPU"), (), "")

    info = interpret_build(facts)

    assert info.backends == ("cpu",)
    assert info.gpu_offload is False


def test_a_binding_that_cannot_load_is_an_absent_part() -> None:
    def broken() -> BuildFacts:
        raise OSError("libllama.so: cannot open shared object file")

    def missing() -> BuildFacts:
        raise ImportError("No module named 'llama_cpp'")

    for loader, words in ((broken, "did not load"), (missing, "not installed")):
        result = probe_build(loader)
        assert result.value is None
        assert result.absent[0].part == "llama.cpp build"
        assert words in result.absent[0].reason


def _gpu(vendor: str) -> GpuDevice:
    return GpuDevice(vendor=vendor, name="a GPU", memory_total_bytes=1)  # type: ignore[arg-type]


def test_a_gpu_the_build_cannot_drive_says_how_to_reinstall() -> None:
    cpu_only = interpret_build(BuildFacts("0.3.36", False, ("CPU",), (), ""))

    gpu = mark_usability(_gpu("nvidia"), cpu_only, None)

    assert gpu.usable_by_build is False
    assert gpu.backend == "cuda"
    assert gpu.unusable_reason is not None
    assert "no CUDA support" in gpu.unusable_reason
    assert 'CMAKE_ARGS="-DGGML_CUDA=on"' in gpu.unusable_reason


def test_an_amd_gpu_falls_back_to_vulkan_when_the_build_has_no_rocm() -> None:
    vulkan = interpret_build(BuildFacts("x", True, ("Vulkan", "CPU"), (), ""))

    gpu = mark_usability(_gpu("amd"), vulkan, None)

    assert (gpu.usable_by_build, gpu.backend, gpu.unusable_reason) == (True, "vulkan", None)


def test_an_unknown_build_marks_gpus_unusable_with_the_reason() -> None:
    gpu = mark_usability(_gpu("apple"), None, "llama-cpp-python is not installed")

    assert gpu.usable_by_build is False
    assert gpu.unusable_reason is not None
    assert "not installed" in gpu.unusable_reason


def test_build_devices_keep_their_memory() -> None:
    device = BuildDevice("MTL0", "Apple M3 Ultra", "gpu", 498216206336, 498216206336)
    info = interpret_build(BuildFacts("x", True, ("MTL", "CPU"), (device,), ""))

    assert info.devices == (device,)
