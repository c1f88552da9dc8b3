"""Read models: changes, positions, the checkpoint protocol and the projection runner (store-agnostic)."""

from ._changes import Change, ChangeKind, StreamPosition
from ._checkpoints import CheckpointStore, StreamProgress
from ._projection import BatchOutcome, History, Projection, RebuildProgress
from ._source import ChangeFeed, ChangeSource, ScannableStore, StartAt, TrimmedPolicy

__all__ = [
    "BatchOutcome",
    "Change",
    "ChangeFeed",
    "ChangeKind",
    "ChangeSource",
    "CheckpointStore",
    "History",
    "Projection",
    "RebuildProgress",
    "ScannableStore",
    "StartAt",
    "StreamPosition",
    "StreamProgress",
    "TrimmedPolicy",
]
