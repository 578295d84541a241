"""``homefire fit`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


MAC_256 = "Mac Studio M3 Ultra 256GB"


def _fit_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert run(["fit", *argv, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_cluster_json_plans_a_744b_model_across_three_machines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = _fit_json(["glm-5.2", "--profile", MAC_256, "--cluster", f"2x {MAC_256}"], capsys)
    cluster = data["cluster"]
    assert cluster["link_gbps"] == 10.0
    assert [m["role"] for m in cluster["members"]] == ["here", "worker", "worker"]
    assert [m["name"] for m in cluster["members"]][1:] == [f"{MAC_256} #1", f"{MAC_256} #2"]
    assert set(cluster["members"][0]) == {
        "name", "role", "memory_bytes", "memory_basis", "backend", "bandwidth_gbs",
        "bandwidth_basis",
    }  # fmt: skip
    by_quant = {v["quant"]: v for v in data["variants"]}
    # Alone the 256 GB machine cannot hold GLM-5.2 at 2 bits; the cluster can.
    two_bit = by_quant["UD-IQ2_M"]
    assert two_bit["verdict"] == "no_fit"
    assert two_bit["cluster"]["verdict"] == "fits"
    assert two_bit["cluster"]["text"].startswith("fits across 3 machines: ")
    assert two_bit["cluster"]["tokens_per_s"] > 0
    assert two_bit["cluster"]["network_ms_per_token"] > 0
    assert cluster["recommended"] == "UD-IQ2_M"
    assert two_bit["cluster"]["recommended"]
    split = two_bit["split"]
    assert [s["role"] for s in split] == ["worker", "worker", "here"]
    assert sum(s["n_layers"] for s in split) == 92
    assert [s["output_layer"] for s in split] == [False, False, True]
    for share in split:
        assert share["need_bytes"] == (
            share["weights_bytes"] + share["kv_bytes"] + share["compute_bytes"]
            + share["other_bytes"]
        )  # fmt: skip
        assert share["fits"]
        assert share["need_bytes"] <= share["memory_bytes"]
    assert by_quant["Q8_0"]["cluster"]["verdict"] == "no_fit"
    assert by_quant["Q8_0"]["cluster"]["tokens_per_s"] is None


def test_a_slower_link_gives_a_slower_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["glm-5.2", "--profile", MAC_256, "--cluster", MAC_256, "--cluster", MAC_256]
    fast = _fit_json([*argv, "--link-gbps", "25"], capsys)
    slow = _fit_json([*argv, "--link-gbps", "1"], capsys)
    assert slow["cluster"]["link_gbps"] == 1.0
    speed = [
        {v["quant"]: v["cluster"]["tokens_per_s"] for v in d["variants"]} for d in (fast, slow)
    ]
    assert speed[1]["UD-IQ2_M"] < speed[0]["UD-IQ2_M"]


def test_without_cluster_the_keys_are_null(capsys: pytest.CaptureFixture[str]) -> None:
    data = _fit_json(["llama-3.1-8b-instruct", "--profile", PROFILE], capsys)
    assert data["cluster"] is None
    assert all(v["cluster"] is None and v["split"] is None for v in data["variants"])


def test_cluster_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["fit", "glm-5.2", "--profile", MAC_256, "--cluster", f"2x {MAC_256}"]) == 0
    out = capsys.readouterr().out
    assert f"across 3 machines: {MAC_256} + 2 × {MAC_256}, 10 Gbit/s link" in out
    assert "* recommended across the cluster: UD-IQ2_M, fits across 3 machines" in out
    assert "+ output here" in out
    assert "cluster tok/s: estimated" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cluster", "2x Cray-1"], "no hardware profile named"),
        (["--cluster", f"40x {MAC_256}"], "1 to 15 machines"),
        (["--cluster", MAC_256, "--link-gbps", "0"], "--link-gbps"),
        (["--cluster", MAC_256, "--link-gbps", "nan"], "--link-gbps"),
    ],
)
def test_bad_cluster_input_is_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["fit", "qwen3-8b", "--profile", PROFILE, *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
