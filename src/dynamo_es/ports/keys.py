"""Where data subjects' keys live, for crypto-shredding: the protocol every key store implements.

A key store holds one data key per subject, wrapped (encrypted) by a key-encryption key, and a
tombstone for each subject it forgot, so that a forgotten subject is never given a new key.
"""

from __future__ import annotations

import inspect
from typing import Protocol, runtime_checkable

from ..domain.lifecycle import SUBJECTS, SubjectForgotten
from ..exceptions import ConfigurationError
from .store import EventStore

__all__ = ["KeyStore", "announce_forgotten"]


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


def announce_forgotten(store: EventStore, subject: str) -> bool:
    """Append `SubjectForgotten` as version 1 of ``$Subject:{subject}``; False when it is there already.

    Raises:
        ConfigurationError: ``store`` is an async store (use a sync one here).
        DynamoESError: the append failed (nothing, or not surely anything, announced).
    """
    result = store.append(subject, SUBJECTS, [SubjectForgotten(subject)], 0)
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise ConfigurationError("announce_to", "needs a sync event store: forget() is sync")
    if result.conflict:
        return False
    result.raise_for_failure()
    return True
