"""Planning profiles: built-in ones by name, the user's own in config_dir, and the JSON format."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from app.core.errors import ConfigError, UnknownProfile
from app.core.hardware.builtin_profiles import builtin_profiles
from app.core.hardware.profile_json import profile_from_dict, profile_to_dict
from app.core.hardware.profiles import (
    get_profile,
    list_profiles,
    remove_user_profile,
    save_user_profile,
    user_profiles_path,
)
from app.core.storage.paths import AppPaths

GIB = 1024**3
MIB = 1024**2

ISSUE_PROFILES = [
    "Mac Studio M3 Ultra 512GB",
    "Mac Studio M3 Ultra 256GB",
    "Mac Studio M3 Ultra 96GB",
    "MacBook Pro M4 Max 128GB",
    "RTX 4090 24GB + 64GB RAM",
    "RTX 3060 12GB + 32GB RAM",
    "2x RTX 3090 + 128GB RAM",
    "CPU only 32GB DDR5",
]


@pytest.fixture
def paths() -> AppPaths:
    return AppPaths.from_env()


def test_every_builtin_profile_the_issue_names_exists_with_cited_figures() -> None:
    profiles = builtin_profiles()

    assert [profile.name for profile in profiles] == ISSUE_PROFILES
    for profile in profiles:
        assert profile.source == "builtin"
        assert profile.sources, profile.name
        assert profile.ram_bandwidth_gbs
        assert profile.ram_bandwidth_source
        for gpu in profile.gpus:
            assert gpu.usable_by_build
            assert gpu.memory_bandwidth_gbs
            assert gpu.memory_bandwidth_source


def test_builtin_gpu_sizes_are_the_recorded_ones(paths: AppPaths) -> None:
    rtx_4090 = get_profile("RTX 4090 24GB + 64GB RAM", paths)
    dual_3090 = get_profile("2x RTX 3090 + 128GB RAM", paths)
    ultra = get_profile("Mac Studio M3 Ultra 512GB", paths)

    assert rtx_4090.gpus[0].memory_total_bytes == 24564 * MIB
    assert rtx_4090.ram_total_bytes == 64 * GIB
    assert [gpu.memory_total_bytes for gpu in dual_3090.gpus] == [24576 * MIB] * 2
    assert [gpu.index for gpu in dual_3090.gpus] == [0, 1]
    assert ultra.gpus[0].usable_memory_bytes == 464 * GIB
    assert ultra.gpus[0].memory_bandwidth_gbs == 819
    assert get_profile("CPU only 32GB DDR5", paths).gpus == ()


@pytest.mark.parametrize("spelling", ["mac studio m3 ultra 512gb", "Mac-Studio-M3-Ultra-512GB"])
def test_names_match_without_case_or_punctuation(paths: AppPaths, spelling: str) -> None:
    assert get_profile(spelling, paths).name == "Mac Studio M3 Ultra 512GB"


def test_an_unknown_name_raises_a_typed_error_listing_the_known_names(paths: AppPaths) -> None:
    with pytest.raises(UnknownProfile) as raised:
        get_profile("Mac Studio M9 Ultra", paths)

    assert raised.value.known == ISSUE_PROFILES
    assert "Mac Studio M9 Ultra" in raised.value.user_message
    assert "RTX 3060 12GB + 32GB RAM" in raised.value.user_message


def test_user_profiles_are_saved_listed_found_and_removed(paths: AppPaths) -> None:
    mine = replace(get_profile("RTX 3060 12GB + 32GB RAM", paths), name="My desk", sources=())

    save_user_profile(mine, paths)

    assert user_profiles_path(paths).parent == paths.config_dir
    assert [profile.name for profile in list_profiles(paths)] == [*ISSUE_PROFILES, "My desk"]
    found = get_profile("my desk", paths)
    assert found.source == "user"
    assert found.gpus == mine.gpus
    save_user_profile(replace(mine, ram_total_bytes=64 * GIB), paths)  # same name replaces
    assert get_profile("My desk", paths).ram_total_bytes == 64 * GIB
    assert len(list_profiles(paths)) == len(ISSUE_PROFILES) + 1

    remove_user_profile("My Desk", paths)

    assert [profile.name for profile in list_profiles(paths)] == ISSUE_PROFILES
    with pytest.raises(UnknownProfile):
        remove_user_profile("My desk", paths)


def test_builtin_names_cannot_be_overwritten_or_removed(paths: AppPaths) -> None:
    builtin = get_profile("CPU only 32GB DDR5", paths)

    with pytest.raises(ConfigError):
        save_user_profile(builtin, paths)
    with pytest.raises(ConfigError):
        remove_user_profile("cpu only 32gb ddr5", paths)


def test_a_corrupt_user_file_leaves_builtins_usable_and_is_not_overwritten(paths: AppPaths) -> None:
    path = user_profiles_path(paths)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    mine = replace(builtin_profiles()[-1], name="Mine")

    assert [profile.name for profile in list_profiles(paths)] == ISSUE_PROFILES
    with pytest.raises(ConfigError, match="cannot read the hardware profiles file"):
        save_user_profile(mine, paths)
    assert path.read_text() == "{not json"


def test_every_builtin_profile_survives_a_json_round_trip() -> None:
    for profile in builtin_profiles():
        data = json.loads(json.dumps(profile_to_dict(profile)))
        assert data["schema"] == 1
        assert profile_from_dict(data) == profile


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": 2}, "schema 2 is not supported"),
        ({"ram_total_bytes": "lots"}, "'ram_total_bytes' must be a whole number"),
        ({"ram_total_bytes": -1}, "must not be negative"),
        ({"backends": ["cuda", "opencl"]}, "backend 'opencl'"),
        ({"cpu": "fast"}, "'cpu' must be a JSON object"),
        ({"gpus": [{"vendor": "nvidia", "name": "x", "memory_total_bytes": True}]}, "whole number"),
        (
            {"gpus": [{"vendor": "3dfx", "name": "x", "memory_total_bytes": 1}]},
            "'vendor' must be one of",
        ),
    ],
)
def test_a_malformed_profile_gives_a_config_error_naming_the_field(
    change: dict[str, object], message: str
) -> None:
    data = profile_to_dict(builtin_profiles()[0]) | change

    with pytest.raises(ConfigError, match=message):
        profile_from_dict(data)
