"""Everything the desktop app's pages share: the core services plus what only the app owns.

The chat history, the download queue, the Hub client, the background-task bridge and the
hardware profile live here, built once in :meth:`Desktop.create` and closed in order by
:meth:`Desktop.close`. Pages receive this object; there are no globals.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QSettings

from app.core.catalog.hub import HubClient
from app.core.chats.store import ChatStore
from app.core.downloads.manager import DownloadManager
from app.core.hardware.detect import detect
from app.core.hardware.profile import HardwareProfile
from app.core.library.sources import other_tools_copies
from app.core.services import AppServices
from app.gui.bridge import Bridge
from app.gui.model_loader import ModelLoader

log = logging.getLogger(__name__)


@dataclass
class Desktop:
    services: AppServices
    bridge: Bridge
    chats: ChatStore
    hub: HubClient
    downloads: DownloadManager
    loader: ModelLoader
    settings: QSettings
    _profile: Future[HardwareProfile] | None = field(default=None)
    _closed: bool = False

    @classmethod
    def create(cls, services: AppServices, owner: QObject | None = None) -> Desktop:
        bridge = Bridge(owner)
        chats = ChatStore.open(services.paths)
        hub = HubClient.from_env()
        downloads = DownloadManager(services.paths.models_dir, hub, existing=other_tools_copies())
        loader = ModelLoader(services, bridge, owner)
        return cls(services, bridge, chats, hub, downloads, loader, gui_settings(services))

    def hardware_profile(self) -> Future[HardwareProfile]:
        """This machine, detected once in the background (probes may run commands)."""
        if self._profile is None:
            paths = self.services.paths
            self._profile = self.bridge.run(lambda: detect(paths=paths), lambda _p: None)
        return self._profile

    def close(self) -> None:
        """Background work, downloads, then the core (server, engine, ledger), then the chats."""
        if self._closed:
            return
        self._closed = True
        self.settings.sync()
        self.bridge.close()
        self.downloads.close()
        self.services.close()
        self.chats.close()


def gui_settings(services: AppServices) -> QSettings:
    """Window geometry and the last page: an INI file in Homefire's config folder (QSettings).

    Kept under HOMEFIRE_HOME like every other file, so tests never touch the user's settings.
    """
    path = services.paths.config_dir / "desktop.ini"
    return QSettings(str(path), QSettings.Format.IniFormat)
