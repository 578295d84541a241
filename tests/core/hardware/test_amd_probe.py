"""AMD GPUs through amdgpu's sysfs files, on trees built from recorded sysfs contents."""

from __future__ import annotations

from pathlib import Path

from app.core.hardware.amd import probe_amd
from tests.core.hardware.recorded import lact_revision, lact_vram_bytes, sysfs_tree

XTX_INFO = "rx-7900-xtx.lact-cli-info.txt"


def test_an_rx_7900_xtx_shows_24_gb_of_vram_and_its_name(tmp_path: Path) -> None:
    root = sysfs_tree(
        tmp_path,
        "navi31-rx-7900-xtx-per-lact.sysfs-uevent.txt",
        extra={
            "card0/device/mem_info_vram_total": str(lact_vram_bytes(XTX_INFO)),
            "card0/device/revision": lact_revision(XTX_INFO),
        },
    )
    result = probe_amd(root)

    assert result.absent == ()
    assert result.value is not None
    (gpu,) = result.value
    assert gpu.vendor == "amd"
    assert gpu.name == "AMD Radeon RX 7900 XTX"
    assert gpu.memory_total_bytes == 24560 * 1024**2
    assert gpu.memory_used_bytes is None  # not recorded for this card
    assert gpu.memory_free_bytes is None
    assert gpu.memory_bandwidth_gbs == 960
    assert gpu.unified_memory is False


def test_an_rx_6900_xt_reads_total_used_and_free(tmp_path: Path) -> None:
    result = probe_amd(sysfs_tree(tmp_path, "rx-6900-xt-16gb.sysfs.txt"))

    assert result.value is not None
    (gpu,) = result.value
    assert gpu.name == "AMD Radeon RX 6900 XT"  # empty product_name; named by PCI id + revision
    assert gpu.memory_total_bytes == 17163091968
    assert gpu.memory_used_bytes == 668274688
    assert gpu.memory_free_bytes == 17163091968 - 668274688
    assert gpu.memory_bandwidth_gbs == 512


def test_an_apu_uses_its_gtt_size_not_the_small_carve_out(tmp_path: Path) -> None:
    result = probe_amd(sysfs_tree(tmp_path, "amd-phoenix-apu-radeon-780m.sysfs.txt"))

    assert result.value is not None
    (gpu,) = result.value
    assert gpu.unified_memory is True
    assert gpu.memory_total_bytes == 4294967296
    assert gpu.usable_memory_bytes == 31433977856
    assert gpu.usable_memory_source is not None
    assert gpu.usable_memory_source.startswith("measured:")


def test_a_card_without_memory_files_is_absent_with_its_name(tmp_path: Path) -> None:
    result = probe_amd(sysfs_tree(tmp_path, "navi31-rx-7900-xtx-per-lact.sysfs-uevent.txt"))

    assert result.value == ()
    (part,) = result.absent
    assert part.part == "amd gpu card0"
    assert "RX 7900" in part.reason
    assert "mem_info_vram_total" in part.reason


def test_cards_of_other_vendors_and_connectors_are_skipped(tmp_path: Path) -> None:
    root = sysfs_tree(
        tmp_path,
        "rx-6900-xt-16gb.sysfs.txt",
        extra={"card1/device/vendor": "0x10de", "card0-DP-1/status": "connected"},
    )
    result = probe_amd(root)

    assert result.value is not None
    assert [gpu.name for gpu in result.value] == ["AMD Radeon RX 6900 XT"]


def test_no_drm_folder_is_an_absent_part_not_an_error(tmp_path: Path) -> None:
    result = probe_amd(tmp_path)

    assert result.value is None
    assert result.absent[0].part == "amd"
