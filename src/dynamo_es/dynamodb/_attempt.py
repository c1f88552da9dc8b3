"""One append call's progress: retries of transient failures, and what a failure means for the result."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from .._retry import backoff_delay
from .._serialization import EncodedEvent
from .._store import AppendResult
from ..exceptions import EventStoreError, TransientStoreError
from ..settings import EventStoreSettings
from ._errors import BOUNDARY_ERRORS, Failure, classify

__all__ = ["Attempt", "SlotReader"]

log = logging.getLogger("dynamo_es")


class SlotReader(Protocol):
    """What an attempt reads back after a failure: the stream's version, and the ids in some slots."""

    settings: EventStoreSettings

    def version_or_none(self, stream_id: str) -> int | None:
        """The stream's version, or None when it cannot be read."""
        ...

    def slot_ids(self, stream_id: str, first: int, last: int) -> list[str]:
        """The event ids stored in versions ``first`` to ``last``."""
        ...


@attrs.define
class Attempt:
    """One append call's progress, and what each failed write means for its result."""

    store: SlotReader
    stream_id: str
    expected_version: int
    written: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.written = self.expected_version

    def succeeded(self) -> AppendResult:
        return AppendResult(
            success=True,
            stream_id=self.stream_id,
            expected_version=self.expected_version,
            new_version=self.written,
        )

    def conflicted(self, actual_version: int | None) -> AppendResult:
        return AppendResult(
            success=False,
            stream_id=self.stream_id,
            expected_version=self.expected_version,
            new_version=self.written,
            conflict=True,
            actual_version=actual_version,
        )

    def failed(self, error: EventStoreError) -> AppendResult:
        return AppendResult(
            success=False,
            stream_id=self.stream_id,
            expected_version=self.expected_version,
            new_version=self.written,
            error=error,
        )

    def run(self, write: Callable[[], Any], batch: Sequence[EncodedEvent]) -> AppendResult | None:
        """Run ``write``, retrying transient failures; None on success, else the result to return."""
        settings = self.store.settings
        retries = 0
        while True:
            try:
                write()
                return None
            except BOUNDARY_ERRORS as error:
                kind, reason = classify(error)
                if kind is not Failure.TRANSIENT or retries >= settings.max_transient_retries:
                    return self._after_failure(kind, reason, error, batch, attempts=retries + 1)
            delay = backoff_delay(retries, settings.retry_base_delay_ms / 1000, settings.retry_max_delay_ms / 1000)
            retries += 1
            log.info("%s: %s, retry %d in %.3fs", self.stream_id, reason, retries, delay)
            time.sleep(delay)

    def _after_failure(
        self,
        kind: Failure,
        reason: str,
        error: BaseException,
        batch: Sequence[EncodedEvent],
        *,
        attempts: int,
    ) -> AppendResult | None:
        if kind in (Failure.CONFLICT, Failure.IDEMPOTENCY_MISMATCH) and self._already_stored(batch):
            log.info(
                "%s: versions %d-%d already hold these events",
                self.stream_id,
                batch[0].version,
                batch[-1].version,
            )
            return None
        if kind is Failure.CONFLICT:
            return self.conflicted(self.store.version_or_none(self.stream_id))
        if kind is Failure.TRANSIENT:
            failure: EventStoreError = TransientStoreError(self.stream_id, reason, attempts)
        else:
            failure = EventStoreError(f"cannot append to {self.stream_id}: {reason}")
        failure.__cause__ = error
        return self.failed(failure)

    def _already_stored(self, batch: Sequence[EncodedEvent]) -> bool:
        """Whether the batch's slots hold exactly its own event ids (an earlier try went through)."""
        try:
            stored = self.store.slot_ids(self.stream_id, batch[0].version, batch[-1].version)
        except EventStoreError:
            return False
        return stored == [record.event_id for record in batch]
