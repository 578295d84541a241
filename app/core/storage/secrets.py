"""Secrets (the Hugging Face token, the endpoint's API key) in the OS keyring, never in files.

macOS Keychain, the Secret Service on Linux desktops, Windows Credential Locker: whatever
``keyring`` finds. A machine without a working backend (a bare server) can still read
``HF_TOKEN`` from the environment; saving there is refused with a clear error rather than
falling back to a plain-text file. A keyring backend that is itself a plain-text file (such as
keyrings.alt's ``PlaintextKeyring``) is refused the same way: never written, never read.
"""

from __future__ import annotations

import logging
from typing import Literal

from app.core.errors import SecretsUnavailable

log = logging.getLogger(__name__)

SERVICE = "homefire"
SecretName = Literal["huggingface-token", "server-api-key"]


def plain_text_backend() -> str | None:
    """The name of the configured keyring backend when it keeps secrets in plain text."""
    import keyring

    backend = keyring.get_keyring()
    # A chain (several usable backends) reads from each in turn: any plain-text one counts.
    for candidate in (backend, *getattr(backend, "backends", ())):
        names = [cls.__name__ for cls in type(candidate).__mro__]
        if any("plaintext" in name.lower() for name in names):
            return f"{type(candidate).__module__}.{type(candidate).__name__}"
    return None


def _refusal(backend: str) -> str:
    return (
        f"the keyring backend {backend} keeps secrets in a plain-text file, so Homefire does not "
        "use it: choose a real OS keyring (PYTHON_KEYRING_BACKEND or keyring's config), or give "
        "the secret through the environment"
    )


def read_secret(name: SecretName) -> str | None:
    """The saved secret, or None when none is saved or no (acceptable) keyring backend works."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        insecure = plain_text_backend()
        if insecure is not None:
            log.warning("not reading the %s: %s", name.replace("-", " "), _refusal(insecure))
            return None
        return keyring.get_password(SERVICE, name)
    except (KeyringError, RuntimeError, OSError) as exc:
        log.debug("no usable keyring: %s", exc)
        return None


def save_secret(name: SecretName, value: str) -> None:
    import keyring
    from keyring.errors import KeyringError

    insecure = plain_text_backend()
    if insecure is not None:
        raise SecretsUnavailable(f"cannot save the {name.replace('-', ' ')}: {_refusal(insecure)}")
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
