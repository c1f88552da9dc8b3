"""Read-model writes a projection handler returns, applied with its checkpoint in one transaction.

The writes are PynamoDB operations on the user's own models (the model is the read model's
schema); `commit_effects()` adds the checkpoint's Update and sends
them together, so a redelivered event changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from ...exceptions import InvalidStreamError

__all__ = [
    "ConditionCheck",
    "DeleteItem",
    "PutItem",
    "ReadModelWrite",
    "UpdateItem",
    "read_model_writes",
    "transact_items",
]


@attrs.frozen
class PutItem:
    """Put ``item`` (a PynamoDB model instance), if ``condition`` holds."""

    item: Model
    condition: Condition | None = attrs.field(default=None, kw_only=True)

    def transact_item(self) -> dict[str, Any]:
        """The TransactWriteItems entry."""
        return {"Put": self.item.get_save_kwargs_from_instance(condition=self.condition)}


@attrs.frozen
class UpdateItem:
    """Apply ``actions`` (``Model.attr.set(...)``, ``.add(...)``, ...) to ``item``'s key, if ``condition`` holds."""

    item: Model
    actions: Sequence[Action]
    condition: Condition | None = attrs.field(default=None, kw_only=True)

    def transact_item(self) -> dict[str, Any]:
        """The TransactWriteItems entry."""
        kwargs = self.item.get_update_kwargs_from_instance(actions=list(self.actions), condition=self.condition)
        return {"Update": kwargs}


@attrs.frozen
class DeleteItem:
    """Delete ``item``'s key, if ``condition`` holds."""

    item: Model
    condition: Condition | None = attrs.field(default=None, kw_only=True)

    def transact_item(self) -> dict[str, Any]:
        """The TransactWriteItems entry."""
        return {"Delete": self.item.get_delete_kwargs_from_instance(condition=self.condition)}


@attrs.frozen
class ConditionCheck:
    """Write nothing unless ``condition`` holds on the item at ``hash_key`` (and ``range_key``) of ``model``."""

    model: type[Model]
    hash_key: Any
    condition: Condition
    range_key: Any = attrs.field(default=None, kw_only=True)

    def transact_item(self) -> dict[str, Any]:
        """The TransactWriteItems entry."""
        kwargs = self.model.get_operation_kwargs_from_class(
            self.hash_key, range_key=self.range_key, condition=self.condition
        )
        return {"ConditionCheck": kwargs}


ReadModelWrite = PutItem | UpdateItem | DeleteItem | ConditionCheck
"""One write a projection handler may return (alone, or several in a list)."""

_WRITES = (PutItem, UpdateItem, DeleteItem, ConditionCheck)


def read_model_writes(effects: Any) -> list[ReadModelWrite]:
    """A handler's return value as a list of writes: None is none, one write is one.

    Raises:
        TypeError: something that is not a `ReadModelWrite`.
    """
    if effects is None:
        return []
    if isinstance(effects, _WRITES):
        return [effects]
    if isinstance(effects, Iterable) and not isinstance(effects, (str, bytes, dict)):
        writes = list(effects)
        if all(isinstance(write, _WRITES) for write in writes):
            return writes
    raise TypeError(
        f"a projection with read-model effects returns PutItem, UpdateItem, DeleteItem or ConditionCheck values "
        f"(or a list of them), not {effects!r:.100}"
    )


def transact_items(writes: list[ReadModelWrite]) -> list[dict[str, Any]]:
    """The writes' TransactWriteItems entries, refusing two actions on one item (DynamoDB allows one).

    Raises:
        InvalidStreamError: two writes target the same item.
    """
    entries = [write.transact_item() for write in writes]
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        body = next(iter(entry.values()))
        key = body.get("Key") or _key_of(writes[index], body["Item"])
        target = json.dumps([body["TableName"], key], sort_keys=True)
        if target in seen:
            raise InvalidStreamError(
                f"read-model writes {seen[target]} and {index} both target {key} in {body['TableName']!r}; "
                "a transaction takes one action per item: merge them"
            )
        seen[target] = index
    return entries


def _key_of(write: ReadModelWrite, item: dict[str, Any]) -> dict[str, Any]:
    model = type(write.item) if isinstance(write, PutItem | UpdateItem | DeleteItem) else write.model
    attributes = model.get_attributes()
    keys = [model._hash_keyname, model._range_keyname]
    names = [attributes[key].attr_name for key in keys if key is not None]
    return {name: item[name] for name in names if name in item}
