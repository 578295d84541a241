"""Secrets (the Hugging Face token, the endpoint's API key) in the OS keyring, never in files.

macOS Keychain, the Secret Service on Linux desktops, Windows Credential Locker: whatever
``keyring`` finds. A machine without a working backend (a bare server) can still read
``HF_TOKEN`` from the environment; saving there is refused with a clear error rather than
falling back to a plain-text file.
"""

from __future__ import annotations

import logging
from typing import Literal

from app.core.errors import SecretsUnavailable

log = logging.getLogger(__name__)

SERVICE = "homefire"
SecretName = Literal["huggingface-token", "server-api-key"]


def read_secret(name: SecretName) -> str | None:
    """The saved secret, or None when none is saved or no keyring backend works."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        return keyring.get_password(SERVICE, name)
    except (KeyringError, RuntimeError, OSError) as exc:
        log.debug("no usable keyring: %s", exc)
        return None


def save_secret(name: SecretName, value: str) -> None:
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(SERVICE, name, value)
    except (KeyringError, RuntimeError, OSError) as exc:
        raise SecretsUnavailable(
            f"cannot save the {name.replace('-', ' ')}: no usable OS keyring ({exc})"
        ) from exc


def delete_secret(name: SecretName) -> bool:
    """Forget a saved secret; False when there was none (or no keyring to hold one)."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        keyring.delete_password(SERVICE, name)
    except PasswordDeleteError:
        return False
    except (KeyringError, RuntimeError, OSError) as exc:
        log.debug("no usable keyring: %s", exc)
        return False
    return True
