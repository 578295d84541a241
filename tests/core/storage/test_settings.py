"""Settings: typed, versioned, atomic; a corrupt file means defaults and a warning, never a crash."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app.core.storage.paths import AppPaths
from app.core.storage.settings import SCHEMA_VERSION, Settings, SettingsStore


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert SettingsStore(tmp_path / "settings.json").load() == Settings()


def test_only_non_defaults_are_saved_and_read_back(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    settings = Settings()
    settings.server.port = 11434
    settings.default_model = "gemma-3-270m"
    store.save(settings)
    raw = json.loads(store.path.read_text())
    assert raw == {
        "schema_version": SCHEMA_VERSION,
        "default_model": "gemma-3-270m",
        "server": {"port": 11434},
    }
    assert store.load() == settings


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"server": {"port": "many"}}',
        '{"server": {"port": 99999}}',
        '{"schema_version": 999}',
        "",
    ],
)
def test_a_corrupt_file_falls_back_to_defaults_and_is_kept_aside(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING):
        assert SettingsStore(path).load() == Settings()
    assert "settings" in caplog.text
    assert (tmp_path / "settings.json.corrupt").read_text() == content


def test_unknown_keys_from_a_newer_minor_version_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"schema_version": 1, "future_feature": true, "server": {"port": 9000}}')
    assert SettingsStore(path).load().server.port == 9000


def test_save_replaces_atomically_without_temp_files_left(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    for port in (1000, 2000, 3000):
        settings = Settings()
        settings.server.port = port
        store.save(settings)
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
    assert store.load().server.port == 3000


def test_homefire_home_moves_every_path(tmp_path: Path) -> None:
    paths = AppPaths.from_env({"HOMEFIRE_HOME": str(tmp_path)})
    for folder in (paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir):
        assert folder.is_relative_to(tmp_path)
    assert paths.settings_file.is_relative_to(tmp_path)
    assert paths.database_file.is_relative_to(tmp_path)
    assert paths.models_dir.is_relative_to(tmp_path)


def test_tests_never_touch_the_real_home(homefire_home: Path) -> None:
    assert AppPaths.from_env().config_dir.is_relative_to(homefire_home)


def test_workers_and_their_link_are_settings(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    settings = Settings()
    assert settings.engine.workers == []
    assert settings.engine.worker_link_gbps == 10.0
    settings.engine.workers = ["192.168.1.20:50052", "[fe80::1]:50052"]
    settings.engine.worker_link_gbps = 2.5
    store.save(settings)
    assert store.load().engine.workers == ["192.168.1.20:50052", "[fe80::1]:50052"]
    assert store.load().engine.worker_link_gbps == 2.5


@pytest.mark.parametrize("engine", [{"workers": ["h:1"] * 17}, {"worker_link_gbps": 0}])
def test_bad_worker_settings_fall_back_to_defaults(
    tmp_path: Path, engine: dict[str, object]
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "engine": engine}))
    assert SettingsStore(path).load() == Settings()
