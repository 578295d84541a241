"""PyInstaller hook for llama-cpp-python, which loads libllama/libggml*/libmtmd with ctypes.

PyInstaller cannot see ctypes loads, so the libraries in ``llama_cpp/lib`` are collected here and
kept in ``llama_cpp/lib`` inside the bundle: ``llama_cpp.py`` looks for them next to itself, and
their RPATH ($ORIGIN / @loader_path) finds the ggml libraries beside them.
"""

from pathlib import Path

from PyInstaller.utils.hooks import collect_data_files, get_package_paths

from installers.engine_libraries import shipped_library_names

_, _package_dir = get_package_paths("llama_cpp")
_lib_dir = Path(_package_dir) / "lib"
_names = shipped_library_names(p.name for p in _lib_dir.iterdir() if p.is_file())

binaries = [(str(_lib_dir / name), "llama_cpp/lib") for name in _names]
# The server sub-package and the chat formats import lazily; py.typed etc. are harmless data.
datas = collect_data_files("llama_cpp", excludes=["lib/**"])
hiddenimports = ["llama_cpp.llama_chat_format", "llama_cpp.mtmd_cpp", "llama_cpp.llava_cpp"]
