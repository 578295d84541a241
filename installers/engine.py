"""The llama-cpp-python wheel the installers ship: built from the PyPI sdist for any CPU of the
target family, never for the build machine's own.

PyPI has only the sdist, and a plain ``pip install`` compiles ggml with ``-march=native``: fine
for a developer's venv, a SIGILL on a user's older CPU. So the recipe builds its own wheel with
``GGML_NATIVE=OFF``: on x86-64 that is ggml's AVX2/FMA/F16C/BMI2 baseline (-msse4.2 -mavx -mavx2 -mfma -mf16c -mbmi2: Haswell / Zen and
later; ``installers/entry.py`` refuses older CPUs with a message), on Apple Silicon the generic
arm64 target plus Metal with its shader library embedded.

GGML_CPU_ALL_VARIANTS + GGML_BACKEND_DL (one CPU backend per instruction-set level, chosen at
run time) is not used: llama-cpp-python 0.3.36 installs only the fixed targets ``ggml-cpu``,
``ggml-metal``... into ``llama_cpp/lib``, so the ``ggml-cpu-haswell`` etc. libraries would not
reach the wheel, and ggml looks for them next to the *executable*, not next to libggml.

pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS: a cached native wheel from the dev
venv would be reused silently. Hence ``--no-cache-dir`` and our own wheel folder per build key.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"

# Compiler flags that tie the binary to the build machine's CPU.
NATIVE_FLAGS: tuple[str, ...] = ("-march=native", "-mcpu=native", "-mtune=native")


class EngineBuildError(Exception):
    """The portable engine could not be built, or what was built is not portable."""


@dataclass(frozen=True)
class EngineRecipe:
    version: str
    cmake_args: tuple[str, ...]
    machine: str

    @property
    def key(self) -> str:
        """Names the wheel folder: a change of version, flags or CPU family is a new build."""
        text = "|".join((self.version, self.machine, *self.cmake_args))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def cmake_args_env(self) -> str:
        return " ".join(self.cmake_args)


def recipe_for(system: str = sys.platform, machine: str | None = None) -> EngineRecipe:
    """The portable build for ``system`` (``linux`` or ``darwin``)."""
    # GGML_RPC builds libggml-rpc: `homefire worker` serves this machine's memory over it and
    # a load with workers registers them as devices (pooling machines for one model).
    args = ["-DGGML_NATIVE=OFF", "-DGGML_RPC=ON", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"]
    if system == "darwin":
        # llama-cpp-python's CMakeLists forces these on Apple too; spelled out so the recipe
        # says what ships: Metal, with the .metallib embedded (no default.metallib lookups).
        args += ["-DGGML_METAL=ON", "-DGGML_METAL_EMBED_LIBRARY=ON"]
    return EngineRecipe(LLAMA_CPP_PYTHON_VERSION, tuple(args), machine or platform.machine())


def default_cache_root() -> Path:
    """Where built wheels are kept: outside ``build/`` so ``make clean`` and fresh CI checkouts
    keep the slowest artefact; a folder per recipe key means changed CMAKE_ARGS never reuse one."""
    default = Path.home() / ".cache" / "homefire-installers" / "engine"
    return Path(os.environ.get("HOMEFIRE_ENGINE_CACHE", default))


def files_built_native(compile_commands: Iterable[Mapping[str, object]]) -> list[str]:
    """Source files in a ``compile_commands.json`` compiled with a build-machine-only flag."""
    found = []
    for entry in compile_commands:
        command = entry.get("command")
        if command is None:
            arguments = entry.get("arguments")
            command = " ".join(str(a) for a in arguments) if isinstance(arguments, list) else ""
        if any(flag in str(command).split() for flag in NATIVE_FLAGS):
            found.append(str(entry.get("file", "?")))
    return found


def check_portable(cmake_build_dir: Path) -> None:
    """Raise unless the CMake build compiled nothing with ``-march=native`` or the like."""
    commands_file = cmake_build_dir / "compile_commands.json"
    if not commands_file.is_file():
        raise EngineBuildError(f"no {commands_file}: cannot prove the engine build is portable")
    native = files_built_native(json.loads(commands_file.read_text(encoding="utf-8")))
    if native:
        raise EngineBuildError(
            f"{len(native)} files were compiled for this machine's CPU only, e.g. {native[0]}"
        )


def build_wheel(recipe: EngineRecipe, python: Path, cache_root: Path, log_path: Path) -> Path:
    """The wheel for ``recipe``, built with ``python``'s pip unless an earlier build left it."""
    wheel_dir = cache_root / recipe.key / "wheel"
    existing = sorted(wheel_dir.glob("llama_cpp_python-*.whl"))
    if existing:
        return existing[-1]
    cmake_dir = (cache_root / recipe.key / "cmake").resolve()
    # pip unpacks the sdist into a new temporary folder each time, and a CMake cache from
    # another source folder refuses to configure.
    shutil.rmtree(cmake_dir, ignore_errors=True)
    env = dict(os.environ, CMAKE_ARGS=recipe.cmake_args_env)
    command = [
        str(python), "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
        "--no-binary", "llama-cpp-python",
        "-C", f"build-dir={cmake_dir}",
        "-w", str(wheel_dir),
        f"llama-cpp-python=={recipe.version}",
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"CMAKE_ARGS={recipe.cmake_args_env}\n$ {' '.join(command)}\n")
        log.flush()
        result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        shutil.rmtree(wheel_dir, ignore_errors=True)
        raise EngineBuildError(f"pip wheel llama-cpp-python failed; see {log_path}")
    try:
        check_portable(cmake_dir)
    except EngineBuildError:
        shutil.rmtree(wheel_dir, ignore_errors=True)
        raise
    built = sorted(wheel_dir.glob("llama_cpp_python-*.whl"))
    if not built:
        raise EngineBuildError(f"pip reported success but left no wheel in {wheel_dir}")
    return built[-1]


def dev_recipe(env: Mapping[str, str]) -> EngineRecipe:
    """The dev venv's build: the shipped recipe plus a developer's own ``CMAKE_ARGS``
    (``-DGGML_CUDA=on``), which make another build key and so another cached wheel. The
    installers' shipped build ignores ``CMAKE_ARGS``."""
    recipe = recipe_for()
    extra = tuple(shlex.split(env.get("CMAKE_ARGS", "")))
    return replace(recipe, cmake_args=(*recipe.cmake_args, *extra)) if extra else recipe


def main(argv: list[str] | None = None) -> int:
    """``python -m installers.engine wheel``: build (or reuse) this platform's wheel and print its
    path. The Makefile's dev venv installs it, so a source checkout runs the same engine as the
    installers (RPC included) and CI compiles llama.cpp once for both."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["wheel"]:
        print("usage: python -m installers.engine wheel", file=sys.stderr)  # noqa: T201
        return 2
    recipe = dev_recipe(os.environ)
    cache = default_cache_root()
    try:
        wheel = build_wheel(recipe, Path(sys.executable), cache, cache / recipe.key / "build.log")
    except EngineBuildError as exc:
        print(f"engine: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    print(wheel)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
