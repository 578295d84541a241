"""Everything the desktop app's pages share: the core services plus the Qt objects they need.

The core services (stores, clients, managers) come from :class:`AppServices`; this object adds
only what needs Qt: the background-task bridge, the model loader's signals and the window's
QSettings. Built once in :meth:`Desktop.create`, closed in order by :meth:`Desktop.close`.
Pages receive this object; there are no globals.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QSettings

from app.core.hardware.profile import HardwareProfile
from app.core.services import AppServices
from app.gui.bridge import Bridge, PoolRelay
from app.gui.model_loader import ModelLoader

log = logging.getLogger(__name__)


@dataclass
class Desktop:
    services: AppServices
    bridge: Bridge
    loader: ModelLoader
    settings: QSettings
    pool_events: PoolRelay  # the loaded models changed (any page may listen)
    _profile: Future[HardwareProfile] | None = field(default=None)
    _closed: bool = False

    @classmethod
    def create(cls, services: AppServices, owner: QObject | None = None) -> Desktop:
        bridge = Bridge(owner)
        loader = ModelLoader(services, bridge, owner)
        pool_events = PoolRelay(services.pool, owner)
        # First of the pool's listeners: the pages that follow read the loader's current model.
        pool_events.changed.connect(loader.forget_unloaded)
        return cls(services, bridge, loader, gui_settings(services), pool_events)

    def hardware_profile(self) -> Future[HardwareProfile]:
        """This machine, detected once in the background (probes may run commands; the first
        run on a machine also measures its RAM bandwidth)."""
        if self._profile is None:
            self._profile = self.bridge.run(self.services.this_machine, lambda _p: None)
        return self._profile

    def close(self) -> None:
        """Background work first (it may still use the core), then the core services."""
        if self._closed:
            return
        self._closed = True
        self.settings.sync()
        self.pool_events.close()
        self.bridge.close()
        self.services.close()


def gui_settings(services: AppServices) -> QSettings:
    """Window geometry and the last page: an INI file in Homefire's config folder (QSettings).

    Only what Qt saves and restores itself lives here; what Homefire validates is in the core
    settings. Kept under HOMEFIRE_HOME like every other file, so tests never touch the user's.
    """
    path = services.paths.config_dir / "desktop.ini"
    return QSettings(str(path), QSettings.Format.IniFormat)
