"""The checkpoint store's operations as flows: shared by the sync and the async checkpoint stores.

Requests are built from the PynamoDB model (``get_update_kwargs_from_instance`` and the model's
attribute names) and items are read back with ``Model.from_raw_data``: the model stays the one
definition of the item.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from pynamodb.attributes import Attribute, BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from ...core.changes import SHARD_END, StreamPosition
from ...core.serialization import default_converter
from ...domain.events import StoredEvent
from ...exceptions import CorruptItemError, EventStoreError, TransientStoreError, WriteConditionError
from ...ports.checkpoints import StreamProgress
from ...ports.store import Tracking, check_tracking, check_transaction_size
from ...settings import EventStoreSettings
from ..schema.model import table_meta
from .base import Call, Flow
from .errors import BOUNDARY_ERRORS, Failure, GaveUp, cancellation_codes, classify, send
from .read_models import read_model_writes, transact_items

__all__ = [
    "HASHED_PREFIX",
    "POSITION_PREFIX",
    "CheckpointFlows",
    "CheckpointItem",
    "checkpoint_model",
    "checkpoint_rows",
    "stream_key",
]

POSITION_PREFIX = "$position#"
HASHED_PREFIX = "$sha256#"
"""The sort key of a stream id too long for one (over 1,024 bytes): this, then its SHA-256 in hex."""
MAX_SORT_KEY_BYTES = 1024
"""DynamoDB's sort key limit, in UTF-8 bytes; stream ids may be up to 2,048."""
_SEQUENCE_DIGITS = 128
"""Sequence numbers are stored zero-padded, so that DynamoDB's string order is their numeric order."""
_TOKEN_NAMESPACE = uuid.UUID("5d0c6a8e-9b1f-4c3e-8a27-3f6e1d2b9c44")
_BATCH_GET_KEYS = 100


class CheckpointItem(Model):
    """A checkpoint row: a shard's sequence number, or the projection's progress with one stream.

    ``(name, "$position#<shard>")`` holds the sequence; ``(name, <stream id>)`` the progress. A
    stream id over DynamoDB's 1,024-byte sort key limit is keyed ``$sha256#<hex digest>``, with
    the full id in ``streamId`` (checked on every read).
    """

    class Meta:  # noqa: D106  # PynamoDB's model options
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
    stream_id = UnicodeAttribute(attr_name="streamId", null=True)
    """The full stream id, for a key that holds its hash (stream ids over 1,024 bytes)."""


@functools.cache
def checkpoint_model(settings: EventStoreSettings) -> type[CheckpointItem]:
    """The `CheckpointItem` model on ``settings.checkpoints_table_name``."""
    namespace = {"Meta": table_meta(settings, settings.checkpoints_table_name), "__module__": __name__}
    return type(f"CheckpointItem_{settings.checkpoints_table_name}", (CheckpointItem,), namespace)


def stream_key(stream_id: str) -> str:
    """The checkpoint sort key of ``stream_id``: itself, or its hash when it is over the sort key limit.

    Short ids (every id before long ones were supported) stay as they are, so no migration is needed.
    """
    encoded = stream_id.encode("utf-8", errors="surrogatepass")
    if len(encoded) <= MAX_SORT_KEY_BYTES:
        return stream_id
    return HASHED_PREFIX + hashlib.sha256(encoded).hexdigest()


def _stream_of(item: CheckpointItem) -> str:
    """The stream id a progress item belongs to (its key, or for a hashed key the full id it keeps)."""
    if not item.key.startswith(HASHED_PREFIX):
        return item.key
    if item.stream_id is None or stream_key(item.stream_id) != item.key:
        raise CorruptItemError(
            f"checkpoint {item.name!r}/{item.key!r}: a hashed key whose streamId {item.stream_id!r} does not match",
            stream_id=str(item.stream_id),
            version=int(item.version or 0),
            event_type="<checkpoint>",
            attribute="streamId",
        )
    return item.stream_id


def checkpoint_rows(table: str, model: type[CheckpointItem]) -> Flow[list[CheckpointItem]]:
    """Every row of the checkpoints ``table`` (positions and stream progress), with the attributes a summary reads."""
    attributes: list[Attribute[Any]] = [
        model.name,
        model.key,
        model.shard_sequence,
        model.version,
        model.failures,
        model.parked,
        model.updated_at,
    ]
    names = {f"#a{index}": attribute.attr_name for index, attribute in enumerate(attributes)}
    params: dict[str, Any] = {
        "TableName": table,
        "ConsistentRead": True,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    return (yield from _all_pages("scan", params, model, f"cannot read the checkpoints table {table!r}"))


def _all_pages(operation: str, params: dict[str, Any], model: type[CheckpointItem], failure: str) -> Flow[list[Any]]:
    """Every page of a Query or Scan, as items of ``model``; a failure raises EventStoreError(``failure``)."""
    items: list[Any] = []
    while True:
        try:
            page = yield Call(operation, params)
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"{failure}: {error}") from error
        items.extend(model.from_raw_data(raw) for raw in page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            return items
        params = {**params, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def _now() -> str:
    return datetime.now(UTC).isoformat()


@attrs.define
class CheckpointFlows:
    """Every checkpoint operation, as a flow over the checkpoint model's table."""

    settings: EventStoreSettings
    model: type[CheckpointItem]
    saved: dict[tuple[str, str], str] = attrs.field(factory=dict)
    """Shard positions this store wrote, so an unchanged one is not written again."""

    @property
    def table(self) -> str:
        """The checkpoints table's name."""
        return self.settings.checkpoints_table_name

    def load_position(self, name: str) -> Flow[StreamPosition | None]:
        """The position saved under ``name``, or None."""
        key = self.model.key.attr_name
        params = self._query(
            name, f"begins_with(#{key}, :prefix)", {f"#{key}": key}, {":prefix": {"S": POSITION_PREFIX}}
        )
        items = yield from self._query_all(params, f"cannot read checkpoint {name!r}")
        if not items:
            return None
        shards = {item.key[len(POSITION_PREFIX) :]: item.shard_sequence for item in items}
        return default_converter.structure({"shards": shards}, StreamPosition)

    def save_position(self, name: str, position: StreamPosition) -> Flow[None]:
        """Move each shard of ``name``'s position forward to ``position``'s; never back."""
        model = self.model
        for shard_id, sequence in position.shards.items():
            if self.saved.get((name, shard_id)) == sequence:
                continue  # unchanged since this store saved it
            padded = "9" * (_SEQUENCE_DIGITS + 1) if sequence == SHARD_END else sequence.zfill(_SEQUENCE_DIGITS)
            newer = model.sequence.does_not_exist() | (model.sequence < padded)
            actions = [model.sequence.set(padded), model.shard_sequence.set(sequence)]
            yield from self._update(name, POSITION_PREFIX + shard_id, actions, newer)
            self.saved[(name, shard_id)] = sequence

    def load_progress(self, name: str, stream_ids: Iterable[str]) -> Flow[dict[str, StreamProgress]]:
        """The progress of each of ``stream_ids`` that has any (BatchGetItem, 100 keys a request)."""
        keys = [self._key(name, stream_key(stream_id)) for stream_id in sorted(set(stream_ids))]
        progress: dict[str, StreamProgress] = {}
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            pending: dict[str, Any] = {
                self.table: {"Keys": keys[start : start + _BATCH_GET_KEYS], "ConsistentRead": True}
            }
            while pending:
                try:
                    page = yield Call("batch_get_item", {"RequestItems": pending})
                except BOUNDARY_ERRORS as error:
                    raise EventStoreError(f"cannot read progress of {name!r}: {error}") from error
                for raw in page.get("Responses", {}).get(self.table, []):
                    item = self.model.from_raw_data(raw)
                    progress[_stream_of(item)] = _progress(item)
                pending = page.get("UnprocessedKeys") or {}
        return progress

    def save_versions(self, name: str, versions: Mapping[str, int]) -> Flow[None]:
        """Record the last applied version per stream, where it is newer; clears failures."""
        for stream_id, version in versions.items():
            yield from self._update_stream(name, stream_id, applied(self.model, version), newer(self.model, version))

    def record_failure(
        self, name: str, stream_id: str, version: int, error: str, *, park_after: int | None
    ) -> Flow[int]:
        """Count a failed attempt at ``version``; park the stream once the count reaches ``park_after``."""
        model = self.model
        unapplied = model.version.does_not_exist() | (model.version < version)
        counted = [model.failures.add(1), model.error.set(error[:2000])]
        item = yield from self._update_stream(name, stream_id, counted, unapplied & (model.failed_version == version))
        if item is None:  # the first failure at this version (or it was applied meanwhile)
            first = [model.failures.set(1), model.failed_version.set(version), model.error.set(error[:2000])]
            item = yield from self._update_stream(name, stream_id, first, unapplied)
        if item is None:
            return 0  # applied meanwhile, by another worker: nothing to count
        failures = int(item.failures or 0)
        if park_after is not None and failures >= park_after:
            yield from self._update_stream(name, stream_id, [model.parked.set(True)], None)
        return failures

    def parked(self, name: str) -> Flow[dict[str, StreamProgress]]:
        """The parked streams of ``name``."""
        parked = self.model.parked.attr_name
        params = self._query(name, None, {f"#{parked}": parked}, {":yes": {"BOOL": True}})
        params["FilterExpression"] = f"#{parked} = :yes"
        items = yield from self._query_all(params, f"cannot read parked streams of {name!r}")
        return {_stream_of(item): _progress(item) for item in items}

    def unpark(self, name: str, stream_id: str) -> Flow[None]:
        """Let ``stream_id`` be applied again; its failure count restarts."""
        model = self.model
        actions = [model.parked.remove(), model.failures.remove(), model.error.remove(), model.failed_version.remove()]
        yield from self._update_stream(name, stream_id, actions, None)

    def tracking_update(self, tracking: Tracking) -> dict[str, Any]:
        """A transaction's Update that records ``tracking`` if it is newer (as save_versions would)."""
        model = self.model
        actions = [*applied(model, tracking.version), *self._full_id(tracking.stream_id), model.updated_at.set(_now())]
        update: dict[str, Any] = model(tracking.name, stream_key(tracking.stream_id)).get_update_kwargs_from_instance(
            actions=actions, condition=newer(model, tracking.version)
        )
        return update

    def _full_id(self, stream_id: str) -> list[Action]:
        """For a stream keyed by its hash, the action that keeps its full id beside the key."""
        return [self.model.stream_id.set(stream_id)] if stream_key(stream_id) != stream_id else []

    def _update_stream(
        self, name: str, stream_id: str, actions: Sequence[Action], condition: Condition | None
    ) -> Flow[Any]:
        """`_update()` of a stream's progress item, keyed to fit DynamoDB's sort key limit."""
        key = stream_key(stream_id)
        if key != stream_id:
            actions = [*actions, *self._full_id(stream_id)]
        return (yield from self._update(name, key, actions, condition))

    def commit_effects(self, name: str, event: StoredEvent, effects: Any) -> Flow[bool]:
        """Apply read-model writes and record ``event``'s version in one transaction; False for a redelivery."""
        tracking = Tracking(name, event.stream_id, event.version)
        check_tracking(tracking)
        items = [{"Update": self.tracking_update(tracking)}, *transact_items(read_model_writes(effects))]
        check_transaction_size([], len(items), len(json.dumps(items)), streams=(event.stream_id,))
        token = str(uuid.uuid5(_TOKEN_NAMESPACE, json.dumps(items, sort_keys=True)))
        call = Call("transact_write_items", {"TransactItems": items, "ClientRequestToken": token})
        sent = yield from send(call, self.settings, lambda: f"read-model commit of {name} {event.stream_id}")
        if isinstance(sent, GaveUp):
            return _effects_failed(tracking, sent.error, attempts=sent.attempts)
        return True

    # -- requests ---------------------------------------------------------------------------

    def _key(self, name: str, key: str) -> dict[str, Any]:
        return {self.model.name.attr_name: {"S": name}, self.model.key.attr_name: {"S": key}}

    def _query(self, name: str, extra: str | None, names: dict[str, str], values: dict[str, Any]) -> dict[str, Any]:
        hash_name = self.model.name.attr_name
        condition = f"#{hash_name} = :name" + (f" AND {extra}" if extra else "")
        return {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {f"#{hash_name}": hash_name, **names},
            "ExpressionAttributeValues": {":name": {"S": name}, **values},
            "ConsistentRead": True,
        }

    def _query_all(self, params: dict[str, Any], failure: str) -> Flow[list[Any]]:
        return (yield from _all_pages("query", params, self.model, failure))

    def _update(self, name: str, key: str, actions: Sequence[Action], condition: Condition | None) -> Flow[Any]:
        """Apply ``actions`` if ``condition`` holds; the item after, or None when it did not hold."""
        model = self.model
        params = model(name, key).get_update_kwargs_from_instance(
            actions=[*actions, model.updated_at.set(_now())], condition=condition
        )
        try:
            response = yield Call("update_item", {**params, "ReturnValues": "ALL_NEW"})
        except BOUNDARY_ERRORS as error:
            if classify(error)[0] is Failure.CONFLICT:
                return None
            raise EventStoreError(f"cannot save checkpoint {name!r} / {key!r}: {error}") from error
        return model.from_raw_data(response.get("Attributes", {}))


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
    where = f"{tracking.stream_id} v{tracking.version}"
    raise EventStoreError(f"{tracking.name}: cannot apply {where}: {reason}") from error


def applied(model: type[CheckpointItem], version: int) -> list[Action]:
    """Set the applied version; clear the failures counted against the version before it."""
    return [model.version.set(version), model.failures.remove(), model.error.remove(), model.failed_version.remove()]


def newer(model: type[CheckpointItem], version: int) -> Condition:
    """The stored version is older than ``version`` (or there is none)."""
    condition: Condition = model.version.does_not_exist() | (model.version < version)
    return condition


def _progress(item: Any) -> StreamProgress:
    return default_converter.structure(item.attribute_values, StreamProgress)
