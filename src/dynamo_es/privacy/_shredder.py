"""The shredder: a serializer's personal fields sealed with their subject's data key, opened on reads."""

from __future__ import annotations

import base64
import binascii
import collections
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..domain.personal import FORGOTTEN, SEALED, personal_data_of
from ..exceptions import SubjectForgottenError
from ..ports.keys import KeyStore
from ._keys import NONCE_BYTES, KeyWrapper

__all__ = ["CryptoShredder"]

_DATA_KEY_BYTES = 32
_FORGOTTEN = b""
"""A cached forgotten subject: reads give placeholders without asking the key store again."""


@attrs.define
class CryptoShredder:
    """Seals personal fields with AES-256-GCM, one data key per subject; `forget()` deletes the key.

    Attributes:
        keys: where the wrapped data keys live.
        wrapper: wraps and unwraps them (a local key in development, KMS in production).
        cache_size: unwrapped keys kept in this process, least recently used out first.
        cache_seconds: how long one is kept; another process's `forget()` takes effect here
            within this time.
    """

    keys: KeyStore
    wrapper: KeyWrapper
    cache_size: int = attrs.field(default=1000, kw_only=True)
    cache_seconds: float = attrs.field(default=300.0, kw_only=True)
    clock: Callable[[], float] = attrs.field(default=time.monotonic, kw_only=True, repr=False)
    _cache: collections.OrderedDict[str, tuple[bytes, float]] = attrs.field(
        factory=collections.OrderedDict, init=False, repr=False
    )
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def seal(self, cls: type[Any], document: dict[str, Any]) -> dict[str, Any]:
        """``document`` (an event of ``cls``, unstructured) with its personal fields sealed.

        Raises:
            SubjectForgottenError: the subject was forgotten.
            ValueError: the subject field holds no ``str``.
        """
        marking = personal_data_of(cls)
        if marking is None:
            return document
        subject = _subject(document, marking.subject_field)
        cipher = AESGCM(self._key(subject, create=True) or _FORGOTTEN)  # never None with create
        sealed = dict(document)
        for field in marking.placeholders:
            if field in sealed:
                nonce = os.urandom(NONCE_BYTES)
                text = json.dumps(sealed[field], separators=(",", ":")).encode()
                box = nonce + cipher.encrypt(nonce, text, _context(subject, field))
                sealed[field] = {SEALED: base64.b64encode(box).decode("ascii")}
        return sealed

    def open(self, cls: type[Any], document: dict[str, Any]) -> dict[str, Any]:
        """``document`` with its sealed values opened, or their placeholders once the subject is forgotten.

        Raises:
            ValueError: a sealed value does not open with the subject's key (corrupt, or not its own).
        """
        fields = [name for name, value in document.items() if type(value) is dict and SEALED in value]
        if not fields:
            return document
        marking = personal_data_of(cls)
        subject_field = marking.subject_field if marking is not None else ""
        subject = _subject(document, subject_field)
        key = self._key(subject, create=False)
        placeholders = marking.placeholders if marking is not None else {}
        opened = dict(document)
        for field in fields:
            if key is None:
                opened[field] = placeholders.get(field, FORGOTTEN)
            else:
                opened[field] = _opened(AESGCM(key), document[field][SEALED], subject, field)
        return opened

    def forget(self, subject: str) -> bool:
        """Delete the subject's data key: its personal fields read as placeholders from now on.

        Idempotent: False when the subject was already forgotten. Nothing in the events is rewritten.
        """
        forgotten = self.keys.forget(subject)
        with self._lock:
            self._cache.pop(subject, None)
        return forgotten

    def _key(self, subject: str, *, create: bool) -> bytes | None:
        """The subject's data key; None when it is forgotten (cached like a key, as ``_FORGOTTEN``).

        Raises:
            SubjectForgottenError: ``create`` for a forgotten subject.
            ValueError: not ``create``, and the subject never had a key (a sealed value that is not its own).
        """
        cached = self._cached(subject)
        if cached is None:
            cached = self._fetched(subject, create=create)
            self._remember(subject, cached)
        if not cached:  # _FORGOTTEN: a data key is never empty
            if create:
                raise SubjectForgottenError(subject)
            return None
        return cached

    def _fetched(self, subject: str, *, create: bool) -> bytes:
        wrapped = self.keys.wrapped_key(subject)
        if wrapped is None and create:
            wrapped = self.keys.add_wrapped_key(subject, self.wrapper.wrap(subject, os.urandom(_DATA_KEY_BYTES)))
        if wrapped is not None:
            return self.wrapper.unwrap(subject, wrapped)
        if self.keys.is_forgotten(subject):
            return _FORGOTTEN
        raise ValueError(f"subject {subject!r} has no data key: the sealed value is not its own")

    def _cached(self, subject: str) -> bytes | None:
        with self._lock:
            entry = self._cache.get(subject)
            if entry is None:
                return None
            if self.clock() - entry[1] > self.cache_seconds:
                del self._cache[subject]
                return None
            self._cache.move_to_end(subject)
            return entry[0]

    def _remember(self, subject: str, key: bytes) -> None:
        with self._lock:
            self._cache[subject] = (key, self.clock())
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    @property
    def cached_subjects(self) -> int:
        """How many unwrapped keys this process holds now (at most ``cache_size``)."""
        with self._lock:
            return len(self._cache)


def _subject(document: dict[str, Any], field: str) -> str:
    subject = document.get(field)
    if not isinstance(subject, str) or not subject:
        raise ValueError(f"the subject field {field!r} holds {subject!r}, not a subject id (a non-empty str)")
    return subject


def _context(subject: str, field: str) -> bytes:
    """The associated data: a sealed value opens only as this subject's value of this field."""
    return f"{subject}\x1f{field}".encode()


def _opened(cipher: AESGCM, sealed: Any, subject: str, field: str) -> Any:
    try:
        box = base64.b64decode(sealed, validate=True)
        return json.loads(cipher.decrypt(box[:NONCE_BYTES], box[NONCE_BYTES:], _context(subject, field)))
    except (InvalidTag, binascii.Error, ValueError, TypeError) as error:
        raise ValueError(f"field {field!r} does not open with subject {subject!r}'s key") from error
