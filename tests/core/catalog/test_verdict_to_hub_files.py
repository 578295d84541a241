"""A verdict's variant leads to the Hub files to download: one rule for ``pull`` and Discover."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.core.catalog.hub import HubClient, HubSettings
from app.core.catalog.recommend import Variant
from app.core.catalog.remote_gguf import hub_variant_for, variants_for_repo
from tests.fixtures.hub_server import HubServer, ServedFile, ServedRepo, hub_server, tiny_gguf

__all__ = ["hub_server"]

REPO = "acme/Split-GGUF"


@pytest.fixture
def hub(hub_server: HubServer) -> HubClient:
    hub_server.add_repo(
        ServedRepo(
            REPO,
            [
                ServedFile("m-Q4_K_M.gguf", tiny_gguf(file_type=15)),
                ServedFile("m-Q8_0.gguf", tiny_gguf(file_type=7, seed=1)),
                # Q6_K lost its second shard: never offered.
                ServedFile("Q6_K/m-Q6_K-00001-of-00002.gguf", tiny_gguf(file_type=18, seed=2)),
            ],
        )
    )
    return HubClient(HubSettings(hub_server.endpoint, offline=False, token=None))


def _read_from_the_hub(hub: HubClient, quant: str) -> Variant:
    return next(v for v in variants_for_repo(REPO, hub) if v.quant == quant)


def test_a_variant_read_from_the_hub_is_found_by_its_files(hub: HubClient) -> None:
    found = hub_variant_for(_read_from_the_hub(hub, "Q8_0"), hub.variants(REPO))
    assert found is not None
    assert [f.path for f in found.files] == ["m-Q8_0.gguf"]


def test_a_catalog_variant_names_no_files_so_its_quant_decides(hub: HubClient) -> None:
    catalog_style = replace(_read_from_the_hub(hub, "Q4_K_M"), files=())
    found = hub_variant_for(catalog_style, hub.variants(REPO))
    assert found is not None
    assert [f.path for f in found.files] == ["m-Q4_K_M.gguf"]


def test_files_that_differ_are_not_matched_by_quant(hub: HubClient) -> None:
    elsewhere = replace(_read_from_the_hub(hub, "Q4_K_M"), files=("other-Q4_K_M.gguf",))
    assert hub_variant_for(elsewhere, hub.variants(REPO)) is None


def test_an_incomplete_split_or_a_missing_quant_is_none(hub: HubClient) -> None:
    q4 = _read_from_the_hub(hub, "Q4_K_M")
    assert hub_variant_for(replace(q4, quant="Q6_K", files=()), hub.variants(REPO)) is None
    assert hub_variant_for(replace(q4, quant="IQ2_XXS", files=()), hub.variants(REPO)) is None
