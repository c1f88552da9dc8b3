"""Where data subjects' keys live, for crypto-shredding: the protocol every key store implements.

A key store holds one data key per subject, wrapped (encrypted) by a key-encryption key, and a
tombstone for each subject it forgot, so that a forgotten subject is never given a new key.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["KeyStore"]


@runtime_checkable
class KeyStore(Protocol):
    """Data keys by subject, stored wrapped; see [`CryptoShredder`][dynamo_es.privacy.CryptoShredder]."""

    def wrapped_key(self, subject: str) -> bytes | None:
        """The subject's wrapped data key; None if it has none (never had, or forgotten)."""
        ...

    def add_wrapped_key(self, subject: str, wrapped: bytes) -> bytes:
        """Store ``wrapped`` as the subject's key unless it has one; the one it has afterwards.

        Raises:
            SubjectForgottenError: the subject was forgotten; it gets no new key.
        """
        ...

    def forget(self, subject: str) -> bool:
        """Delete the subject's key and remember that it is forgotten; False if it already was."""
        ...

    def is_forgotten(self, subject: str) -> bool:
        """Whether the subject was forgotten."""
        ...
