"""``homefire fit`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import run
from tests.fixtures.gguf_writer import raw_gguf, write_tiny_model

PROFILE = "RTX 4090 24GB + 64GB RAM"


def test_catalog_model_table_marks_the_recommendation(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["fit", "qwen3-30b-a3b", "--profile", PROFILE]) == 0
    out = capsys.readouterr().out
    assert "Q4_K_M" in out
    assert "MoE: experts of" in out
    assert "* recommended:" in out
    assert "estimated" in out


def test_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(["fit", "llama-3.1-8b-instruct", "--profile", PROFILE, "--ctx", "4096", "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == 1
    assert data["n_ctx"] == 4096
    assert data["profile"] == {"name": PROFILE, "source": "builtin"}
    assert data["recommended"] in {v["quant"] for v in data["variants"]}
    first = data["variants"][0]
    assert set(first) >= {
        "quant", "file_size_bytes", "file_size_basis", "verdict", "label", "reason", "gpu_bytes",
        "ram_bytes", "gpu_layers", "cpu_moe_layers", "memory_basis", "tokens_per_s",
        "tokens_per_s_basis", "quality", "recommended",
    }  # fmt: skip


def test_local_gguf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf")
    assert run(["fit", str(path), "--profile", "CPU only 32GB DDR5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (variant,) = data["variants"]
    assert variant["quant"] == "F16"
    assert variant["verdict"] == "cpu"
    assert variant["memory_basis"] == "estimated from the GGUF header"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "no-such-model-anywhere"], "not a GGUF file, a catalog model"),
        (["fit", "someone/unknown-repo-GGUF"], "not in the catalog"),
        (["fit", "qwen3-8b", "--profile", "Cray-1"], "no hardware profile named"),
        (["fit", "/nonexistent/model.gguf"], "no such file"),
        (["fit", "qwen3-8b", "--ctx", "0", "--profile", PROFILE], "--ctx"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "content",
    [b"this is a text file", raw_gguf(magic=b"GGML"), raw_gguf(n_tensors=2**62), b"GGUF\x03\0\0\0"],
)
def test_broken_files_are_one_line_errors(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    assert run(["fit", str(path), "--profile", PROFILE]) == 1
    err = capsys.readouterr().err.strip()
    assert "not a usable GGUF" in err
    assert len(err.splitlines()) == 1
