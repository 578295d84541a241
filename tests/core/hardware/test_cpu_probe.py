"""CPU brand, cores, threads and SIMD flags from recorded /proc/cpuinfo, lscpu and sysctl text."""

from __future__ import annotations

from pathlib import Path

from app.core.hardware.cpu import cpu_from_sysctl, parse_lscpu, parse_proc_cpuinfo, probe_linux_cpu
from app.core.hardware.sysctl import parse_sysctl
from tests.core.hardware.recorded import RecordedRunner, fixture


def test_lscpu_of_a_ryzen_9_7950x() -> None:
    cpu = parse_lscpu(fixture("ryzen-9-7950x.lscpu.txt"))

    assert cpu.brand == "AMD Ryzen 9 7950X 16-Core Processor"
    assert (cpu.physical_cores, cpu.logical_cores) == (16, 32)
    assert cpu.arch == "x86_64"
    assert {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "sse3"} <= set(cpu.simd)
    assert "avx_vnni" not in cpu.simd  # Zen 4 has AVX512-VNNI but not the VEX-encoded AVX-VNNI


def test_lscpu_cut_before_the_flags_line_still_gives_brand_and_counts() -> None:
    cpu = parse_lscpu(fixture("i9-13900k.lscpu-head17.txt"))

    assert cpu.brand == "13th Gen Intel(R) Core(TM) i9-13900K"
    assert (cpu.physical_cores, cpu.logical_cores) == (24, 32)
    assert cpu.simd == ()


def test_proc_cpuinfo_of_a_ryzen_9_9950x() -> None:
    cpu = parse_proc_cpuinfo(fixture("ryzen-9-9950x.proc-cpuinfo.txt"), "x86_64")

    assert cpu.brand == "AMD Ryzen 9 9950X 16-Core Processor"
    assert (cpu.physical_cores, cpu.logical_cores) == (16, 32)
    assert {"avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16"} <= set(cpu.simd)


def test_proc_cpuinfo_of_intel_hybrid_chips_without_avx512() -> None:
    ultra = parse_proc_cpuinfo(fixture("intel-core-ultra-9-285.proc-cpuinfo.txt"), "x86_64")
    raptor = parse_proc_cpuinfo(fixture("i9-13980hx.proc-cpuinfo-processor0.partial.txt"), "x86_64")

    assert ultra.brand == "Intel(R) Core(TM) Ultra 9 285"
    assert (ultra.physical_cores, ultra.logical_cores) == (24, 24)
    assert raptor.brand == "13th Gen Intel(R) Core(TM) i9-13980HX"
    assert (raptor.physical_cores, raptor.logical_cores) == (24, 32)
    for cpu in (ultra, raptor):
        assert {"avx2", "avx_vnni", "fma"} <= set(cpu.simd)
        assert not any(flag.startswith("avx512") for flag in cpu.simd)


def test_sysctl_of_an_m3_max_gives_cores_split_and_arm_features() -> None:
    cpu = cpu_from_sysctl(parse_sysctl(fixture("apple-m3-max-36gb.sysctl.txt")))

    assert cpu.brand == "Apple M3 Max"
    assert (cpu.physical_cores, cpu.logical_cores) == (14, 14)
    assert (cpu.performance_cores, cpu.efficiency_cores) == (10, 4)
    assert cpu.arch == "arm64"
    assert {"neon", "dotprod", "i8mm", "bf16", "fp16"} <= set(cpu.simd)
    assert "sme" not in cpu.simd  # FEAT_SME: 0 on the M3


def test_the_linux_probe_reads_proc_cpuinfo_from_the_given_root(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(fixture("ryzen-9-9950x.proc-cpuinfo.txt"))

    result = probe_linux_cpu("x86_64", Path.read_text, RecordedRunner({}), tmp_path)

    assert result.value is not None
    assert result.value.brand == "AMD Ryzen 9 9950X 16-Core Processor"


def test_the_linux_probe_falls_back_to_lscpu_then_reports_absent(tmp_path: Path) -> None:
    lscpu = RecordedRunner({("lscpu",): fixture("ryzen-9-7950x.lscpu.txt")})
    found = probe_linux_cpu("x86_64", Path.read_text, lscpu, tmp_path)
    missing = probe_linux_cpu("x86_64", Path.read_text, RecordedRunner({}), tmp_path)

    assert found.value is not None
    assert found.value.brand == "AMD Ryzen 9 7950X 16-Core Processor"
    assert missing.value is None
    (part,) = missing.absent
    assert part.part == "cpu"
    assert "cpuinfo" in part.reason
    assert "lscpu is not installed" in part.reason
