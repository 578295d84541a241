"""Which Qt files the frozen app keeps: X11 and Wayland yes, embedded-device platforms no."""

from __future__ import annotations

import pytest

from installers.bundle_layout import drop_unused_qt_files, is_unused_qt_file, required_bundle_files

PLUGINS = "PySide6/Qt/plugins"


@pytest.mark.parametrize(
    "dest",
    [
        f"{PLUGINS}/platforms/libqxcb.so",
        f"{PLUGINS}/platforms/libqwayland.so",
        f"{PLUGINS}/platforms/libqoffscreen.so",
        f"{PLUGINS}/platforms/libqcocoa.dylib",
        f"{PLUGINS}/wayland-shell-integration/libxdg-shell.so",
        f"{PLUGINS}/wayland-decoration-client/libbradient.so",
        f"{PLUGINS}/xcbglintegrations/libqxcb-glx-integration.so",
        f"{PLUGINS}/platformthemes/libqxdgdesktopportal.so",
        f"{PLUGINS}/imageformats/libqsvg.so",
        "PySide6/Qt/lib/libQt6Gui.so.6",
        "llama_cpp/lib/libllama.so",
    ],
)
def test_desktop_plugins_and_libraries_stay(dest: str) -> None:
    assert not is_unused_qt_file(dest)


@pytest.mark.parametrize(
    "dest",
    [
        f"{PLUGINS}/platforms/libqeglfs.so",
        f"{PLUGINS}/platforms/libqvnc.so",
        f"{PLUGINS}/platforms/libqlinuxfb.so",
        f"{PLUGINS}/egldeviceintegrations/libqeglfs-kms-integration.so",
        f"{PLUGINS}/wayland-graphics-integration-server/libqt-wayland-compositor-wayland-egl.so",
        f"{PLUGINS}/platformthemes/libqgtk3.so",
        f"{PLUGINS}/printsupport/libcupsprintersupport.so",
        f"{PLUGINS}/designer/libPySidePlugin.so",
    ],
)
def test_embedded_compositor_and_gtk_plugins_go(dest: str) -> None:
    assert is_unused_qt_file(dest)


def test_drop_keeps_the_order_and_other_entries() -> None:
    toc = [
        ("llama_cpp/lib/libllama.so", "/src/libllama.so", "BINARY"),
        (f"{PLUGINS}/platforms/libqvnc.so", "/src/libqvnc.so", "BINARY"),
        (f"{PLUGINS}/platforms/libqxcb.so", "/src/libqxcb.so", "BINARY"),
    ]
    assert [d for d, _, _ in drop_unused_qt_files(toc)] == [
        "llama_cpp/lib/libllama.so",
        f"{PLUGINS}/platforms/libqxcb.so",
    ]


def test_linux_bundle_must_carry_both_display_servers_and_the_engine() -> None:
    required = required_bundle_files("linux")
    assert any("libqxcb.so" in p for p in required)
    assert any("libqwayland.so" in p for p in required)
    assert any("libllama.so" in p for p in required)
    assert any("gguf.part" in p for p in required)


def test_mac_bundle_must_carry_metal_and_cocoa() -> None:
    required = required_bundle_files("darwin")
    assert any("libggml-metal" in p for p in required)
    assert any("libqcocoa" in p for p in required)
