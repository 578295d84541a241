"""The shipped llama.cpp is built for the CPU family, never for the build machine's own CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installers.engine import (
    EngineBuildError,
    check_portable,
    dev_recipe,
    files_built_native,
    recipe_for,
)
from installers.engine_libraries import shipped_library_names
from installers.entry import missing_cpu_flags


def test_linux_recipe_turns_native_tuning_off_and_keeps_metal_out() -> None:
    recipe = recipe_for("linux", "x86_64")
    assert "-DGGML_NATIVE=OFF" in recipe.cmake_args
    assert not any("METAL" in arg for arg in recipe.cmake_args)


def test_macos_recipe_embeds_metal() -> None:
    recipe = recipe_for("darwin", "arm64")
    assert {"-DGGML_NATIVE=OFF", "-DGGML_METAL=ON", "-DGGML_METAL_EMBED_LIBRARY=ON"} <= set(
        recipe.cmake_args
    )


def test_a_different_recipe_gets_a_different_wheel_folder() -> None:
    keys = {recipe_for("linux", "x86_64").key, recipe_for("darwin", "arm64").key}
    keys.add(recipe_for("linux", "aarch64").key)
    assert len(keys) == 3
    assert recipe_for("linux", "x86_64").key == recipe_for("linux", "x86_64").key


def test_files_compiled_with_march_native_are_found() -> None:
    commands: list[dict[str, object]] = [
        {"file": "ggml-cpu.c", "command": "gcc -O3 -march=native -c ggml-cpu.c"},
        {"file": "llama.cpp", "arguments": ["g++", "-O3", "-mavx2", "-c", "llama.cpp"]},
        {"file": "ops.cpp", "arguments": ["g++", "-mcpu=native", "-c", "ops.cpp"]},
    ]
    assert files_built_native(commands) == ["ggml-cpu.c", "ops.cpp"]


def test_check_portable_fails_on_a_native_build(tmp_path: Path) -> None:
    (tmp_path / "compile_commands.json").write_text(
        json.dumps([{"file": "a.c", "command": "cc -march=native -c a.c"}]), encoding="utf-8"
    )
    with pytest.raises(EngineBuildError, match="this machine's CPU"):
        check_portable(tmp_path)


def test_check_portable_without_evidence_fails(tmp_path: Path) -> None:
    with pytest.raises(EngineBuildError, match="cannot prove"):
        check_portable(tmp_path)


def test_only_loadable_names_of_each_engine_library_ship() -> None:
    names = [
        "libllama.so", "libllama.so.0", "libllama.so.0.5.0",
        "libggml-base.so", "libggml-base.so.0", "libggml-base.so.0.25.3",
        "libllama.dylib", "libllama.0.dylib", "libllama.0.5.0.dylib", "py.typed",
    ]  # fmt: skip
    assert shipped_library_names(names) == [
        "libggml-base.so",
        "libggml-base.so.0",
        "libllama.0.dylib",
        "libllama.dylib",
        "libllama.so",
        "libllama.so.0",
    ]


HASWELL_FLAGS = "flags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2 popcnt\n"
SANDY_BRIDGE_FLAGS = "processor\t: 0\nflags\t\t: fpu sse4_2 avx popcnt\n"


def test_a_cpu_with_the_avx2_baseline_is_accepted() -> None:
    assert missing_cpu_flags(HASWELL_FLAGS) == []


def test_an_older_cpu_is_told_what_it_lacks() -> None:
    assert missing_cpu_flags(SANDY_BRIDGE_FLAGS) == ["avx2", "fma", "f16c", "bmi2"]


def test_cpuinfo_without_flags_does_not_block_start() -> None:
    assert missing_cpu_flags("processor\t: 0\nmodel name\t: Apple M2\n") == []


def test_a_developers_cmake_args_add_to_the_recipe_as_another_build() -> None:
    shipped = recipe_for()

    cuda = dev_recipe({"CMAKE_ARGS": "-DGGML_CUDA=on"})

    assert dev_recipe({}) == shipped
    assert cuda.cmake_args == (*shipped.cmake_args, "-DGGML_CUDA=on")
    assert cuda.key != shipped.key
