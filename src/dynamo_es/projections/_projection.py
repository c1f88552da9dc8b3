"""Projection: run a handler for each change, at least once, skipping what it already applied."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ..exceptions import ProjectionError
from ._changes import Change, ChangeKind, StreamPosition
from ._checkpoints import CheckpointStore
from ._source import ChangeFeed, ChangeSource, StartAt

__all__ = ["Projection"]

log = logging.getLogger("dynamo_es.projections")


@attrs.define
class Projection:
    """Feeds a read model from the event stream, with checkpoints.

    Delivery is at least once; the projection remembers the last version it applied per
    aggregate and skips anything at or below it, so a handler may be naive. Only inserts
    reach the handler unless ``kinds`` says otherwise (a MODIFY such as ``isDispatched``
    flipping is not a new event). Progress is checkpointed after each batch, and up to the
    failing change when the handler raises.

    Attributes:
        name: the checkpoint name; one per read model.
        handler: called with each new :class:`Change`.
        checkpoints: where position and versions are saved.
        kinds: which change kinds reach the handler.
    """

    name: str
    handler: Callable[[Change], Any]
    checkpoints: CheckpointStore
    kinds: frozenset[ChangeKind] = attrs.field(default=frozenset({ChangeKind.INSERT}), kw_only=True)
    _versions: dict[str, int] = attrs.field(factory=dict, init=False, repr=False)
    _subscription: ChangeFeed | None = attrs.field(default=None, init=False, repr=False)

    def handle(self, changes: Sequence[Change]) -> int:
        """Apply ``changes`` (in order) through the handler; return how many reached it.

        Use it directly where changes arrive another way (an AWS Lambda handler, say).

        Raises:
            ProjectionError: the handler raised (its error is the cause); the versions of the
                changes before it are saved, and ``handled`` says how many came before.
        """
        self._load_versions(changes)
        applied: dict[str, int] = {}
        count = 0
        try:
            for index, change in enumerate(changes):
                if self._wanted(change):
                    self._apply(change, index, applied)
                    count += 1
        finally:
            if applied:
                self.checkpoints.save_versions(self.name, applied)
        return count

    def run(self, store: ChangeSource, *, stop_when_idle: bool = False, start_at: StartAt = "trim_horizon") -> int:
        """Follow ``store``'s changes from the saved checkpoint until :meth:`stop` (or idle).

        Returns how many changes reached the handler.
        """
        position = self.checkpoints.load_position(self.name) or StreamPosition()
        subscription = store.subscribe_to_changes(position, start_at=start_at)
        self._subscription = subscription
        total = 0
        for batch in subscription.batches(stop_when_idle=stop_when_idle):
            try:
                total += self.handle(batch)
            except ProjectionError as error:
                self.checkpoints.save_position(self.name, position.after_all(batch[: error.handled]))
                raise
            position = position.after_all(batch)
            self.checkpoints.save_position(self.name, position)
            if subscription.stopped:
                break
        return total

    def stop(self) -> None:
        """Make :meth:`run` return after the batch in hand; safe from another thread."""
        if self._subscription is not None:
            self._subscription.stop()

    def _load_versions(self, changes: Sequence[Change]) -> None:
        unknown = {c.event.stream_id for c in changes if c.event.stream_id not in self._versions}
        if unknown:
            found = self.checkpoints.load_versions(self.name, unknown)
            self._versions.update({stream_id: found.get(stream_id, 0) for stream_id in unknown})

    def _wanted(self, change: Change) -> bool:
        if change.kind not in self.kinds:
            return False
        if change.kind is not ChangeKind.INSERT:
            return True
        last = self._versions[change.event.stream_id]
        if change.event.version <= last:
            log.debug("%s: skipping %s v%d (applied)", self.name, change.event.stream_id, change.event.version)
            return False
        if change.event.version > last + 1:
            log.warning("%s: %s jumps from v%d to v%d", self.name, change.event.stream_id, last, change.event.version)
        return True

    def _apply(self, change: Change, index: int, applied: dict[str, int]) -> None:
        event = change.event
        try:
            self.handler(change)
        except Exception as error:
            raise ProjectionError(self.name, event.stream_id, event.version, index) from error
        if change.kind is ChangeKind.INSERT:
            self._versions[event.stream_id] = applied[event.stream_id] = event.version
