"""llama.cpp's own ``llama-server``, built from the llama.cpp that the installed llama-cpp-python
vendors, so the benchmarks compare Homefire with its peer on the very same kernels.

The build runs once (minutes on a small machine) into ~/.cache/homefire-bench/ and is reused:

    python bench/llama_server.py            (build if missing; print the binary's path)

``llama_server(model, n_ctx, parallel)`` runs it on a free port and yields its /v1 URL.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE = Path.home() / ".cache" / "homefire-bench"
ROOT = Path(__file__).resolve().parent.parent


def engine_cmake_args() -> list[str]:
    """The ggml flags Homefire's own engine is built with (the installers' recipe, which the dev
    venv installs too), so both sides run the same kernels: ``GGML_NATIVE=OFF`` on both."""
    sys.path.insert(0, str(ROOT))
    try:
        from installers.engine import recipe_for
    finally:
        sys.path.remove(str(ROOT))
    return [arg for arg in recipe_for().cmake_args if arg.startswith("-DGGML_")]


def installed_version() -> str:
    return importlib.metadata.version("llama-cpp-python")


def llama_server_binary(version: str | None = None) -> Path:
    """The cached ``llama-server`` for this llama-cpp-python version, built when missing."""
    version = version or installed_version()
    flags = engine_cmake_args()
    # A folder per flag set: a build with other ggml flags is another binary.
    root = (
        CACHE / f"llama-cpp-python-{version}-{'-'.join(f.removeprefix('-DGGML_') for f in flags)}"
    )
    binary = root / "build" / "bin" / "llama-server"
    if binary.exists():
        return binary
    source = root / "src"
    if not source.exists():
        download = CACHE / "sdist"
        download.mkdir(parents=True, exist_ok=True)
        sdist = download / f"llama_cpp_python-{version}.tar.gz"
        if not sdist.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                 "--dest", str(download), f"llama-cpp-python=={version}"],
                check=True,
            )  # fmt: skip
        unpack = root / "unpack"
        shutil.rmtree(unpack, ignore_errors=True)
        with tarfile.open(sdist) as archive:
            archive.extractall(unpack, filter="data")
        (top,) = unpack.iterdir()
        top.rename(source)
        shutil.rmtree(unpack)
    build = root / "build"
    llama_cpp = source / "vendor" / "llama.cpp"
    subprocess.run(
        ["cmake", "-S", str(llama_cpp), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
         "-DLLAMA_CURL=OFF", *flags, "-DLLAMA_BUILD_TESTS=OFF",
         "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON"],
        check=True,
    )  # fmt: skip
    jobs = str(os.cpu_count() or 2)
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs], check=True
    )
    if not binary.exists():
        raise RuntimeError(f"the build did not produce {binary}")
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llama_server(model: Path, n_ctx: int, parallel: int, threads: int) -> Iterator[str]:
    """Run llama-server with ``parallel`` slots of ``n_ctx`` tokens each; yield its /v1 URL.

    Its KV cache is laid out as Homefire's: one unified cache of parallel × n_ctx cells
    (``-kvu``) with full-size sliding-window layers (``--swa-full``).
    """
    import httpx  # the build above runs without the venv

    port = _free_port()
    command = [str(llama_server_binary()), "-m", str(model), "--host", "127.0.0.1",
               "--port", str(port), "-c", str(n_ctx * parallel), "-np", str(parallel),
               "-t", str(threads), "-tb", str(threads), "-kvu", "--swa-full",
               "--no-webui"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"llama-server exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("llama-server did not become ready within 120 s")
        yield f"{url}/v1"
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    print(llama_server_binary(sys.argv[1] if len(sys.argv) > 1 else None))
