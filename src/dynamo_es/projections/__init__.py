"""Read models: changes, positions, the checkpoint protocol and the projection runner (store-agnostic)."""

from ._changes import Change, ChangeKind, StreamPosition
from ._checkpoints import CheckpointStore
from ._projection import Projection
from ._source import ChangeFeed, ChangeSource, StartAt, TrimmedPolicy

__all__ = [
    "Change",
    "ChangeFeed",
    "ChangeKind",
    "ChangeSource",
    "CheckpointStore",
    "Projection",
    "StartAt",
    "StreamPosition",
    "TrimmedPolicy",
]
