"""Data keys wrapped by a key-encryption key, and the in-memory key store."""

from __future__ import annotations

import os
import threading
from typing import Protocol

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..exceptions import KeyManagementError, SubjectForgottenError

__all__ = ["DATA_KEY_BYTES", "NONCE_BYTES", "InMemoryKeyStore", "KeyWrapper", "LocalKeyWrapper"]

NONCE_BYTES = 12
"""AES-GCM's nonce: 96 random bits per encryption."""
DATA_KEY_BYTES = 32
"""A data key: AES-256."""


class KeyWrapper(Protocol):
    """Makes a subject's data key wrapped (encrypted) by a key-encryption key, and unwraps it."""

    def new_key(self, subject: str) -> tuple[bytes, bytes]:
        """A new 256-bit data key for ``subject``: (the key, the key wrapped and bound to ``subject``)."""
        ...

    def unwrap(self, subject: str, wrapped: bytes) -> bytes:
        """The data key in ``wrapped``; `KeyManagementError` if it is not ``subject``'s or is corrupt."""
        ...


@attrs.define
class LocalKeyWrapper:
    """Wraps data keys with a local AES-256 key (32 bytes): for development and tests, not production."""

    key: bytes = attrs.field(repr=False)

    def __attrs_post_init__(self) -> None:
        if len(self.key) != 32:  # AES-256
            raise KeyManagementError(f"a local wrapping key has 32 bytes, not {len(self.key)}")

    def new_key(self, subject: str) -> tuple[bytes, bytes]:
        """32 random bytes and their wrapping."""
        data_key = os.urandom(DATA_KEY_BYTES)
        return data_key, self.wrap(subject, data_key)

    def wrap(self, subject: str, data_key: bytes) -> bytes:
        """``data_key`` under AES-GCM with this key, the subject as associated data."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.key).encrypt(nonce, data_key, subject.encode())

    def unwrap(self, subject: str, wrapped: bytes) -> bytes:
        """The data key; `KeyManagementError` for another key's (or another subject's) wrapping."""
        try:
            return AESGCM(self.key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], subject.encode())
        except (InvalidTag, ValueError) as error:
            raise KeyManagementError("cannot unwrap: another wrapping key, or corrupt", subject=subject) from error


@attrs.define
class InMemoryKeyStore:
    """Wrapped data keys and forgotten subjects in this process's memory (tests, development)."""

    _keys: dict[str, bytes] = attrs.field(factory=dict, init=False)
    _forgotten: set[str] = attrs.field(factory=set, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def wrapped_key(self, subject: str) -> bytes | None:
        """The subject's wrapped key, or None."""
        with self._lock:
            return self._keys.get(subject)

    def add_wrapped_key(self, subject: str, wrapped: bytes) -> bytes:
        """Keep ``wrapped`` unless the subject has a key already; the subject's key afterwards."""
        with self._lock:
            if subject in self._forgotten:
                raise SubjectForgottenError(subject)
            return self._keys.setdefault(subject, wrapped)

    def forget(self, subject: str) -> bool:
        """Delete the subject's key for good; False when it was already forgotten."""
        with self._lock:
            self._keys.pop(subject, None)
            if subject in self._forgotten:
                return False
            self._forgotten.add(subject)
            return True

    def is_forgotten(self, subject: str) -> bool:
        """Whether ``forget(subject)`` was called."""
        with self._lock:
            return subject in self._forgotten
