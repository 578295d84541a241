"""Where Homefire writes: platformdirs locations, all moved under ``HOMEFIRE_HOME`` when it is set."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app.core.storage.privacy import private_folder

APP_NAME = "homefire"
HOME_ENV = "HOMEFIRE_HOME"


@dataclass(frozen=True)
class AppPaths:
    """Every folder and file Homefire writes. Build with :meth:`from_env`; tests point it at tmp."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppPaths:
        env = os.environ if environ is None else environ
        home = env.get(HOME_ENV)
        if home:
            root = Path(home).expanduser().resolve()
            return cls(root / "config", root / "data", root / "cache", root / "logs")
        return cls(
            Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        )

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def database_file(self) -> Path:
        return self.data_dir / "homefire.sqlite3"

    @property
    def models_dir(self) -> Path:
        """Homefire's own downloads (other tools' models stay where they are)."""
        return self.data_dir / "models"

    def ensure(self) -> None:
        """Create the folders, private to the user; called once at start-up, not on import."""
        for folder in (
            self.config_dir,
            self.data_dir,
            self.cache_dir,
            self.log_dir,
            self.models_dir,
        ):
            private_folder(folder)
