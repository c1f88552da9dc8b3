"""The DynamoDB key store: each data subject's wrapped data key, or its tombstone, in the keys table."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import attrs
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.update import Action

from ..exceptions import KeyManagementError, SubjectForgottenError
from ..settings import EventStoreSettings
from .schema.keys import KeyItem, key_model
from .schema.table import LazyTable

__all__ = ["DynamoDBKeyStore"]

_CONDITION_FAILED = "ConditionalCheckFailedException"


@attrs.define
class DynamoDBKeyStore:
    """The [`KeyStore`][dynamo_es.ports.keys.KeyStore] on ``keys_table_name`` (``pk`` S = the subject).

    One item per subject: ``wrappedKey`` (Base64 of the wrapped data key) while it is known,
    ``forgottenAt`` once it is forgotten. Reads are strongly consistent, so a ``forget()`` is
    seen by the next key fetch in any process; keys are added only where none was, so racing
    writers agree on one key. The table is checked (and created if allowed) on first use.
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    _table: LazyTable[KeyItem] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._table = LazyTable(key_model(self.settings), self.settings.create_table_if_not_exists)

    def ensure_table(self) -> dict[str, Any]:
        """Check the keys table, creating it if missing and allowed; its description."""
        return self._table.ensure()

    def wrapped_key(self, subject: str) -> bytes | None:
        """The subject's wrapped key, or None (never had one, or forgotten)."""
        row = self._row(subject)
        return None if row is None or row.wrapped_key is None else base64.b64decode(row.wrapped_key)

    def add_wrapped_key(self, subject: str, wrapped: bytes) -> bytes:
        """Store ``wrapped`` unless the subject has a row; the key it has afterwards.

        Raises:
            SubjectForgottenError: the subject was forgotten.
        """
        model = self._table.ready()
        item = model(subject, wrapped_key=base64.b64encode(wrapped).decode("ascii"), created_at=_now())
        try:
            item.save(condition=model.subject.does_not_exist())
            return wrapped
        except PynamoDBException as error:
            if error.cause_response_code != _CONDITION_FAILED:
                raise _failed("cannot store", subject, error) from error
        known = self.wrapped_key(subject)  # another writer's key, or a tombstone
        if known is None:
            raise SubjectForgottenError(subject)
        return known

    def forget(self, subject: str) -> bool:
        """Delete the subject's key and leave its tombstone; False when it was forgotten already."""
        model = self._table.ready()
        now = _now()
        since = model.created_at.set(model.created_at | now)  # a subject never seen gets a row too
        actions: list[Action] = [model.wrapped_key.remove(), model.forgotten_at.set(now), since]
        try:
            model(subject).update(actions=actions, condition=model.forgotten_at.does_not_exist())
        except PynamoDBException as error:
            if error.cause_response_code == _CONDITION_FAILED:
                return False
            raise _failed("cannot forget", subject, error) from error
        return True

    def is_forgotten(self, subject: str) -> bool:
        """Whether the subject has a tombstone."""
        row = self._row(subject)
        return row is not None and row.forgotten_at is not None

    def _row(self, subject: str) -> KeyItem | None:
        model = self._table.ready()
        try:
            return model.get(subject, consistent_read=True)
        except model.DoesNotExist:
            return None
        except PynamoDBException as error:
            raise _failed("cannot read", subject, error) from error


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _failed(action: str, subject: str, error: PynamoDBException) -> KeyManagementError:
    reason = error.cause_response_code or str(error.cause or error)
    return KeyManagementError(f"{action} it in the keys table: {reason}", subject=subject)
