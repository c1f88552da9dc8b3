"""DynamoDBCheckpointStore: projection checkpoints in a DynamoDB table of their own."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from .._events import StoredEvent
from .._serialization import default_converter
from .._store import Tracking, check_tracking, check_transaction_size
from ..exceptions import EventStoreError, TransientStoreError, WriteConditionError
from ..projections._changes import SHARD_END, StreamPosition
from ..projections._checkpoints import StreamProgress
from ..settings import EventStoreSettings
from ._attempt import call_with_retries
from ._errors import BOUNDARY_ERRORS, Failure, cancellation_codes, classify
from ._model import table_meta
from ._read_models import read_model_writes, transact_items
from ._table import LazyTable

__all__ = ["CheckpointItem", "DynamoDBCheckpointStore", "checkpoint_model"]

_POSITION_PREFIX = "$position#"
_SEQUENCE_DIGITS = 128
"""Sequence numbers are stored zero-padded, so that DynamoDB's string order is their numeric order."""


class CheckpointItem(Model):
    """A checkpoint row: a shard's sequence number, or the projection's progress with one stream.

    ``(name, "$position#<shard>")`` holds the sequence; ``(name, <stream id>)`` the progress.
    """

    class Meta:
        abstract = True

    name = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    sequence = UnicodeAttribute(null=True)
    """Zero-padded: DynamoDB's string order is then numeric order, for the conditional write."""
    shard_sequence = UnicodeAttribute(attr_name="shardSequence", null=True)
    """The sequence number exactly as the stream gave it."""
    version = NumberAttribute(null=True)
    failures = NumberAttribute(null=True)
    failed_version = NumberAttribute(attr_name="failedVersion", null=True)
    parked = BooleanAttribute(null=True)
    error = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(attr_name="updatedAt")


@functools.cache
def checkpoint_model(settings: EventStoreSettings) -> type[CheckpointItem]:
    """The `CheckpointItem` model on ``settings.checkpoints_table_name``."""
    namespace = {"Meta": table_meta(settings, settings.checkpoints_table_name), "__module__": __name__}
    return type(f"CheckpointItem_{settings.checkpoints_table_name}", (CheckpointItem,), namespace)


def _now() -> str:
    return datetime.now(UTC).isoformat()


@attrs.define
class DynamoDBCheckpointStore:
    """A [`CheckpointStore`][dynamo_es.CheckpointStore] in its own DynamoDB table (``checkpoints_table_name``).

    The table (``name`` S hash key, ``key`` S range key, no stream) is created on first use
    like the events table. Every write is a conditional update, so concurrent workers of one
    projection never move a shard's position or a stream's version back.
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    _table: LazyTable[CheckpointItem] = attrs.field(init=False, repr=False)
    _saved: dict[tuple[str, str], str] = attrs.field(factory=dict, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._table = LazyTable(
            checkpoint_model(self.settings),
            self.settings.create_table_if_not_exists,
        )

    def ensure_table(self) -> dict[str, Any]:
        """Check the checkpoints table, creating it if missing and allowed."""
        return self._table.ensure()

    def load_position(self, name: str) -> StreamPosition | None:
        """The position saved under ``name``, or None."""
        model = self._table.ready()
        try:
            items = list(model.query(name, model.key.startswith(_POSITION_PREFIX), consistent_read=True))
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot read checkpoint {name!r}: {error}") from error
        if not items:
            return None
        shards = {item.key[len(_POSITION_PREFIX) :]: item.shard_sequence for item in items}
        return default_converter.structure({"shards": shards}, StreamPosition)

    def save_position(self, name: str, position: StreamPosition) -> None:
        """Move each shard of ``name``'s position forward to ``position``'s; never back."""
        model = self._table.ready()
        for shard_id, sequence in position.shards.items():
            if self._saved.get((name, shard_id)) == sequence:
                continue  # unchanged since this store saved it
            padded = "9" * (_SEQUENCE_DIGITS + 1) if sequence == SHARD_END else sequence.zfill(_SEQUENCE_DIGITS)
            newer = model.sequence.does_not_exist() | (model.sequence < padded)
            actions = [model.sequence.set(padded), model.shard_sequence.set(sequence)]
            self._update(name, _POSITION_PREFIX + shard_id, actions, newer)
            self._saved[(name, shard_id)] = sequence

    def load_progress(self, name: str, stream_ids: Iterable[str]) -> dict[str, StreamProgress]:
        """The progress of each of ``stream_ids`` that has any."""
        model = self._table.ready()
        keys = [(name, stream_id) for stream_id in set(stream_ids)]
        if not keys:
            return {}
        try:
            items = list(model.batch_get(keys, consistent_read=True))
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot read progress of {name!r}: {error}") from error
        return {item.key: _progress(item) for item in items}

    def save_versions(self, name: str, versions: Mapping[str, int]) -> None:
        """Record the last applied version per stream, where it is newer; clears failures."""
        model = self._table.ready()
        for stream_id, version in versions.items():
            self._update(name, stream_id, _applied(model, version), _newer(model, version))

    def tracking_update(self, tracking: Tracking) -> dict[str, Any]:
        """A transaction's Update that records ``tracking`` if it is newer (as `save_versions()` would).

        Its condition fails when the version is recorded already: the commit is a redelivery.
        """
        model = self._table.ready()
        item = model(tracking.name, tracking.stream_id)
        actions = [*_applied(model, tracking.version), model.updated_at.set(_now())]
        update: dict[str, Any] = item.get_update_kwargs_from_instance(
            actions=actions, condition=_newer(model, tracking.version)
        )
        return update

    def record_failure(self, name: str, stream_id: str, version: int, error: str, *, park_after: int | None) -> int:
        """Count a failed attempt at ``version``; park the stream once the count reaches ``park_after``."""
        model = self._table.ready()
        unapplied = model.version.does_not_exist() | (model.version < version)
        counted = [model.failures.add(1), model.error.set(error[:2000])]
        item = self._update(name, stream_id, counted, unapplied & (model.failed_version == version))
        if item is None:  # the first failure at this version (or it was applied meanwhile)
            first = [model.failures.set(1), model.failed_version.set(version), model.error.set(error[:2000])]
            item = self._update(name, stream_id, first, unapplied)
        if item is None:
            return 0  # applied meanwhile, by another worker: nothing to count
        failures = int(item.failures or 0)
        if park_after is not None and failures >= park_after:
            self._update(name, stream_id, [model.parked.set(True)], None)
        return failures

    def commit_effects(self, name: str, event: StoredEvent, effects: Any) -> bool:
        """Apply a handler's read-model writes and record ``event``'s version, in one transaction.

        ``effects`` is None, one `ReadModelWrite` or a list of them (at most 99). Returns
        False, writing nothing, when the version is recorded already (a redelivery).

        Raises:
            WriteConditionError: a write's own condition did not hold (nothing was written).
            TransactionTooLargeError: more than 99 writes, or over 4 MB.
            InvalidStreamError: two writes to one item (DynamoDB allows one action per item), or a
                stream id too long to be a checkpoint key.
            TransientStoreError, EventStoreError: DynamoDB failed (nothing was written, or the
                redelivery finds the version recorded).
        """
        tracking = check_tracking_of(name, event)
        items = [{"Update": self.tracking_update(tracking)}, *transact_items(read_model_writes(effects))]
        check_transaction_size([], len(items), len(json.dumps(items)), streams=(event.stream_id,))
        client: Any = self._table.ready()._get_connection().connection.client
        label = f"{name}: {event.stream_id} v{event.version}"
        token = str(uuid.uuid5(_TOKEN_NAMESPACE, json.dumps(items, sort_keys=True)))

        def send() -> Any:
            return client.transact_write_items(TransactItems=items, ClientRequestToken=token)

        try:
            call_with_retries(self.settings, send, label=label)
        except BOUNDARY_ERRORS as error:
            return _effects_failed(tracking, error, attempts=self.settings.max_transient_retries + 1)
        return True

    def parked(self, name: str) -> dict[str, StreamProgress]:
        """The parked streams of ``name``."""
        model = self._table.ready()
        try:
            items = list(model.query(name, filter_condition=model.parked == True, consistent_read=True))  # noqa: E712
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot read parked streams of {name!r}: {error}") from error
        return {item.key: _progress(item) for item in items}

    def unpark(self, name: str, stream_id: str) -> None:
        """Let ``stream_id`` be applied again; its failure count restarts."""
        model = self._table.ready()
        actions = [model.parked.remove(), model.failures.remove(), model.error.remove(), model.failed_version.remove()]
        self._update(name, stream_id, actions, None)

    def _update(
        self, name: str, key: str, actions: Sequence[Action], condition: Condition | None
    ) -> CheckpointItem | None:
        """Apply ``actions`` if ``condition`` holds; the item after, or None when it did not hold."""
        model = self._table.ready()
        item = model(name, key)
        try:
            item.update(actions=[*actions, model.updated_at.set(_now())], condition=condition)
        except BOUNDARY_ERRORS as error:
            if classify(error)[0] is Failure.CONFLICT:
                return None
            raise EventStoreError(f"cannot save checkpoint {name!r} / {key!r}: {error}") from error
        return item


_TOKEN_NAMESPACE = uuid.UUID("5d0c6a8e-9b1f-4c3e-8a27-3f6e1d2b9c44")


def check_tracking_of(name: str, event: StoredEvent) -> Tracking:
    """The tracking record of ``name`` applying ``event``, checked (a key DynamoDB accepts)."""
    tracking = Tracking(name, event.stream_id, event.version)
    check_tracking(tracking)
    return tracking


def _effects_failed(tracking: Tracking, error: BaseException, *, attempts: int) -> bool:
    """False for a redelivery (the checkpoint's condition failed); raise for anything else."""
    kind, reason = classify(error)
    codes = cancellation_codes(error) if kind is Failure.CONFLICT else []
    if codes[:1] == ["ConditionalCheckFailed"]:
        return False
    if "ConditionalCheckFailed" in codes:
        index = codes.index("ConditionalCheckFailed") - 1
        raise WriteConditionError(tracking.name, tracking.stream_id, tracking.version, index) from error
    if kind is Failure.TRANSIENT:
        action = f"applying {tracking.name}'s writes"
        raise TransientStoreError(tracking.stream_id, reason, attempts, action=action) from error
    raise EventStoreError(
        f"{tracking.name}: cannot apply {tracking.stream_id} v{tracking.version}: {reason}"
    ) from error


def _applied(model: type[CheckpointItem], version: int) -> list[Action]:
    """Set the applied version; clear the failures counted against the version before it."""
    return [model.version.set(version), model.failures.remove(), model.error.remove(), model.failed_version.remove()]


def _newer(model: type[CheckpointItem], version: int) -> Condition:
    newer: Condition = model.version.does_not_exist() | (model.version < version)
    return newer


def _progress(item: CheckpointItem) -> StreamProgress:
    return default_converter.structure(item.attribute_values, StreamProgress)
