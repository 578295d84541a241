"""search, pull, ls and rm through the real CLI entry point, against the loopback Hub."""

from __future__ import annotations

import json

import pytest

from app.cli import run
from tests.core.downloads.conftest import REPO
from tests.fixtures.hub_server import HubServer, ServedFile, ServedRepo, tiny_gguf


@pytest.fixture(autouse=True)
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")


@pytest.fixture
def two_quants(hub_server: HubServer) -> None:
    hub_server.add_repo(
        ServedRepo(
            REPO,
            [
                ServedFile("tiny-Q4_K_M.gguf", tiny_gguf(file_type=15, payload_bytes=4096)),
                ServedFile("tiny-Q8_0.gguf", tiny_gguf(file_type=7, payload_bytes=8192)),
            ],
            downloads=3,
        )
    )


@pytest.mark.usefixtures("two_quants")
def test_search_json_lists_hub_repos(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["search", "tiny", "--json"]) == 0
    [repo] = json.loads(capsys.readouterr().out)
    assert repo == {
        "repo_id": REPO,
        "downloads": 3,
        "likes": 0,
        "created_at": "2025-01-01T00:00:00+00:00",
        "gated": False,
        "source": "hub",
    }


@pytest.mark.usefixtures("two_quants")
def test_pull_then_ls_then_rm(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["pull", REPO, "--quant", "q8_0"]) == 0
    assert "downloaded and verified" in capsys.readouterr().out

    assert run(["ls", "--json"]) == 0
    mine = [m for m in json.loads(capsys.readouterr().out) if m["source"] == "homefire"]
    assert [(m["name"], m["quant"], m["architecture"], m["owned"]) for m in mine] == [
        (f"{REPO}:Q8_0", "Q8_0", "llama", True)
    ]

    assert run(["pull", REPO, "--quant", "Q8_0"]) == 0  # already there: no second copy
    assert run(["rm", f"{REPO}:Q8_0"]) == 0
    capsys.readouterr()
    assert run(["ls", "--json"]) == 0
    assert [m for m in json.loads(capsys.readouterr().out) if m["source"] == "homefire"] == []


@pytest.mark.usefixtures("two_quants")
def test_pull_unknown_quant_names_the_available_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["pull", REPO, "--quant", "Q2_K"]) == 1
    assert "available: Q4_K_M, Q8_0" in capsys.readouterr().err


def test_pull_hostile_repo_id_is_one_clear_line(
    hub_server: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["pull", "../../etc"]) == 1
    err = capsys.readouterr().err
    assert "not a Hugging Face repo id" in err
    assert hub_server.requests() == []


def test_search_lists_curated_catalog_entries_first_even_offline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The autouse fixture sets HF_HUB_OFFLINE=1: the Hub is not searched, the catalog answers.
    assert run(["search", "phi 3 mini", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["source"] == "catalog"
    assert rows[0]["repo_id"] == "bartowski/Phi-3-mini-4k-instruct-GGUF"
    assert run(["search", "phi 3 mini"]) == 0
    assert "the Hub was not searched" in capsys.readouterr().out


@pytest.mark.usefixtures("two_quants")
def test_rm_needs_an_exact_name_and_a_prefix_lists_the_candidates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["pull", REPO, "--quant", "Q8_0"]) == 0
    assert run(["pull", REPO, "--quant", "Q4_K_M"]) == 0
    capsys.readouterr()
    for prefix in (REPO, REPO[:4], f"{REPO}:Q8"):
        assert run(["rm", prefix]) == 1
        err = capsys.readouterr().err
        assert "exactly" in err
        assert f"{REPO}:Q8_0" in err
    assert run(["ls", "--json"]) == 0
    mine = [m["name"] for m in json.loads(capsys.readouterr().out) if m["source"] == "homefire"]
    assert sorted(mine) == [f"{REPO}:Q4_K_M", f"{REPO}:Q8_0"]
