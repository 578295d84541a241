"""What macOS reads from Homefire.app's Info.plist (PyInstaller's BUNDLE writes the file)."""

from __future__ import annotations

BUNDLE_ID = "dev.homefire.Homefire"

# PySide6 6.10+ (Qt 6.10) supports macOS 13 and later; Apple Silicon Metal works on all of them.
MINIMUM_MACOS = "13.0"


def info_plist(version: str) -> dict[str, object]:
    """The Info.plist keys beyond the ones PyInstaller sets (name, identifier, executable)."""
    return {
        "CFBundleName": "Homefire",
        "CFBundleDisplayName": "Homefire",
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "LSMinimumSystemVersion": MINIMUM_MACOS,
        "LSApplicationCategoryType": "public.app-category.developer-tools",
        "NSHighResolutionCapable": True,
        # Follow the system's light/dark appearance instead of forcing Aqua light.
        "NSRequiresAquaSystemAppearance": False,
        "NSHumanReadableCopyright": "Apache-2.0",
        # The server listens on loopback; macOS asks about incoming connections only when the
        # user binds it beyond this machine (--host 0.0.0.0), which needs an API key anyway.
        "NSLocalNetworkUsageDescription": (
            "Homefire serves your local model to editors and tools on this network "
            "only when you ask it to listen beyond this Mac."
        ),
    }
