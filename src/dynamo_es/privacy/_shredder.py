"""The shredder: a serializer's personal fields sealed with their subject's data key, opened on reads."""

from __future__ import annotations

import base64
import binascii
import collections
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..domain.personal import FORGOTTEN, SEALED, SEALED_STATE, personal_data_of
from ..exceptions import SubjectForgottenError
from ..ports.keys import KeyStore, announce_forgotten
from ..ports.store import EventStore
from ._keys import NONCE_BYTES, KeyWrapper

__all__ = ["CryptoShredder"]

_SUBJECT = "subject"
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)
"""The payload's own JSON settings: no NaN or infinity, which JSON cannot carry back."""
_STATE = "$state"
"""The associated data's field name for a snapshot's state."""
_UNKNOWN: Any = object()
"""Not yet looked up in this batch."""
_FORGOTTEN: Any = object()
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
    _cache: collections.OrderedDict[str, tuple[Any, float]] = attrs.field(
        factory=collections.OrderedDict, init=False, repr=False
    )
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def seal(self, cls: type[Any], document: dict[str, Any]) -> dict[str, Any]:
        """``document`` (an event of ``cls``, unstructured) with its personal fields sealed.

        Each sealed value is ``{"$sealed": <Base64 of nonce and ciphertext>, "subject": <id>}``:
        it names its own subject, so it opens whatever the class later calls its fields.

        Raises:
            SubjectForgottenError: the subject was forgotten.
            ValueError: the subject field holds no ``str``, a marked field is not in the document
                (a converter that renames it would store it in the clear), or an unmarked field
                holds a dict shaped like a sealed value.
        """
        marking = personal_data_of(cls)
        if marking is None:
            _refuse_sealed_shapes(document, ())
            return document
        subject = _subject(document, marking.subject_field)
        missing = sorted(set(marking.placeholders) - set(document))
        if missing:
            raise ValueError(f"personal fields {missing} are not in the unstructured event: they would not be sealed")
        _refuse_sealed_shapes(document, marking.placeholders)
        cipher = self._key(subject, create=True)
        assert cipher is not None  # create=True gives a key or raises
        sealed = dict(document)
        for field in marking.placeholders:
            nonce = os.urandom(NONCE_BYTES)
            text = _ENCODER.encode(sealed[field]).encode()
            box = nonce + cipher.encrypt(nonce, text, _context(subject, field))
            sealed[field] = {SEALED: base64.b64encode(box).decode("ascii"), _SUBJECT: subject}
        return sealed

    def open(self, cls: type[Any], document: dict[str, Any], *, batch: dict[str, Any] | None = None) -> dict[str, Any]:
        """``document`` with its sealed values opened, or their placeholders once the subject is forgotten.

        With ``batch`` (a dict one batch of documents shares: a load's), each subject's key is
        looked up once for the batch, and ``document``, which the batch owns, is changed in place.

        Raises:
            ValueError: a sealed value does not open with its subject's key (corrupt, or not its own).
        """
        fields = [name for name, value in document.items() if type(value) is dict and _is_sealed(value)]
        if not fields:
            return document
        marking = personal_data_of(cls)
        placeholders = marking.placeholders if marking is not None else {}
        opened = document if batch is not None else dict(document)
        for field in fields:
            subject = _subject(document[field], _SUBJECT)
            key = batch.get(subject, _UNKNOWN) if batch is not None else _UNKNOWN
            if key is _UNKNOWN:
                key = self._key(subject, create=False)
                if batch is not None:
                    batch[subject] = key
            if key is None:
                opened[field] = placeholders.get(field, FORGOTTEN)
            else:
                opened[field] = _opened(key, document[field][SEALED], subject, field)
        return opened

    def seal_state(self, subjects: Sequence[str], text: str, *, context: str) -> str:
        """A snapshot's state sealed with each subject's key in turn: ``{"$sealedState": ..., "subjects": [...]}``.

        Forgetting any one of the subjects makes it unreadable, and the repository replays the
        events instead (which give the placeholders). ``context`` (the aggregate and version) is
        bound into each layer, so the sealed state opens for that snapshot alone.

        Raises:
            SubjectForgottenError: a subject was forgotten (no snapshot is taken then).
        """
        ordered = sorted(set(subjects))
        if not ordered:
            raise ValueError("a sealed state needs at least one subject")
        box = text.encode()
        for subject in ordered:
            cipher = self._key(subject, create=True)
            assert cipher is not None  # create=True gives a key or raises
            nonce = os.urandom(NONCE_BYTES)
            box = nonce + cipher.encrypt(nonce, box, _context(subject, f"{_STATE}\x1f{context}"))
        return _ENCODER.encode({SEALED_STATE: base64.b64encode(box).decode("ascii"), "subjects": ordered})

    def open_state(self, text: str, *, context: str) -> tuple[str, list[str]] | None:
        """A state `seal_state()` sealed, opened, and its subjects; None when one of them is forgotten.

        Text that is not a sealed state is returned as it is, with no subjects.

        Raises:
            ValueError: the sealed state does not open with its subjects' keys.
        """
        sealed = _sealed_state(text)
        if sealed is None:
            return text, []
        box, subjects = sealed
        for subject in reversed(subjects):
            cipher = self._key(subject, create=False)
            if cipher is None:
                return None
            try:
                box = cipher.decrypt(box[:NONCE_BYTES], box[NONCE_BYTES:], _context(subject, f"{_STATE}\x1f{context}"))
            except InvalidTag as error:
                raise ValueError(f"a sealed snapshot state does not open with subject {subject!r}'s key") from error
        return box.decode(), subjects

    def forget(self, subject: str, *, announce_to: EventStore | None = None) -> bool:
        """Delete the subject's data key: its personal fields read as placeholders from now on.

        Idempotent: False when the subject was already forgotten. Nothing in the events is
        rewritten. In this process it takes effect at once, even for a read that fetched the
        key just before; another process's cache holds the key at most ``cache_seconds``.

        With ``announce_to``, a `SubjectForgotten` event is then appended to that store, as
        version 1 of ``$Subject:{subject}`` (once: a second forget finds it there), so read
        models learn of it through their projections. A forget whose announcement failed
        announces on its next call.
        """
        forgotten = self.keys.forget(subject)
        with self._lock:
            self._cache[subject] = (_FORGOTTEN, float("inf"))
        if announce_to is not None:
            announce_forgotten(announce_to, subject)
        return forgotten

    def _key(self, subject: str, *, create: bool) -> AESGCM | None:
        """The subject's cipher; None when it is forgotten (cached like a key, as ``_FORGOTTEN``).

        Raises:
            SubjectForgottenError: ``create`` for a forgotten subject.
            ValueError: not ``create``, and the subject never had a key (a sealed value that is not its own).
        """
        cached = self._cached(subject)
        if cached is None:
            cached = self._fetched(subject, create=create)
            self._remember(subject, cached)
        if cached is _FORGOTTEN:
            if create:
                raise SubjectForgottenError(subject)
            return None
        cipher: AESGCM = cached
        return cipher

    def _fetched(self, subject: str, *, create: bool) -> Any:
        wrapped = self.keys.wrapped_key(subject)
        if wrapped is None and create:
            data_key, new = self.wrapper.new_key(subject)
            wrapped = self.keys.add_wrapped_key(subject, new)
            if wrapped == new:
                return AESGCM(data_key)  # ours was stored: no unwrap needed
        if wrapped is not None:
            return AESGCM(self.wrapper.unwrap(subject, wrapped))
        if self.keys.is_forgotten(subject):
            return _FORGOTTEN
        raise ValueError(f"subject {subject!r} has no data key: the sealed value is not its own")

    def _cached(self, subject: str) -> Any:
        with self._lock:
            entry = self._cache.get(subject)
            if entry is None:
                return None
            if entry[0] is not _FORGOTTEN and self.clock() - entry[1] > self.cache_seconds:
                del self._cache[subject]
                return None
            self._cache.move_to_end(subject)
            return entry[0]

    def _remember(self, subject: str, key: Any) -> None:
        with self._lock:
            known = self._cache.get(subject)
            if known is not None and known[0] is _FORGOTTEN:
                return  # forgotten while this key was fetched: it stays forgotten
            self._cache[subject] = (key, self.clock())
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    @property
    def cached_subjects(self) -> int:
        """How many unwrapped keys this process holds now (at most ``cache_size``)."""
        with self._lock:
            return len(self._cache)


def _sealed_state(text: str) -> tuple[bytes, list[str]] | None:
    """The box and subjects of a sealed snapshot state; None for any other text."""
    if not text.startswith('{"' + SEALED_STATE):
        return None
    document = json.loads(text)
    subjects = document.get("subjects")
    if not isinstance(subjects, list) or not subjects or not all(isinstance(subject, str) for subject in subjects):
        raise ValueError("a sealed snapshot state names no subjects")
    return binascii.a2b_base64(document[SEALED_STATE], strict_mode=True), subjects


def _is_sealed(value: Any) -> bool:
    return type(value) is dict and len(value) == 2 and SEALED in value and _SUBJECT in value


def _refuse_sealed_shapes(document: dict[str, Any], personal: Any) -> None:
    for name, value in document.items():
        if name not in personal and _is_sealed(value):
            raise ValueError(
                f"field {name!r} holds a dict shaped like a sealed value, which reads could not tell apart"
            )


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
        box = binascii.a2b_base64(sealed, strict_mode=True)
        text = cipher.decrypt(box[:NONCE_BYTES], box[NONCE_BYTES:], _context(subject, field)).decode()
        value, end = _SCAN(text, 0)
        if end != len(text):
            raise ValueError("extra data after the sealed value")
        return value
    except (InvalidTag, binascii.Error, ValueError, TypeError, StopIteration) as error:
        raise ValueError(f"field {field!r} does not open with subject {subject!r}'s key") from error


_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # untyped
"""The C scanner behind ``json.loads``, without its per-call checks: (value, end) of the text at an index."""
