"""Replaces PyInstaller's own hook for PySide6.QtNetwork (hooks in hookspath take precedence) to leave
out the Qt plugins Homefire never loads *before* PyInstaller collects their dependencies: GTK
for the gtk3 theme, EGLFS/KMS for embedded devices... (see installers/bundle_layout.py)."""

from PyInstaller.utils.hooks.qt import add_qt6_dependencies

from installers.bundle_layout import drop_unused_qt_hook_entries

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
binaries = drop_unused_qt_hook_entries(binaries)
datas = drop_unused_qt_hook_entries(datas)
