"""Encryption of secrets that must wait for the worker (the admin password of a new orbit)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts with a key derived from ``SOG_SECRET_KEY``; the clear text is never stored."""

    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(("sog-api:" + secret_key).encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, clear: str) -> str:
        return self._fernet.encrypt(clear.encode()).decode()

    def open(self, sealed: str) -> str | None:
        """The clear text, or None when the key changed since it was sealed."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
