"""Read models: changes, positions, the checkpoint protocol and the projection runner (store-agnostic)."""

from ._batch import BatchOutcome, RebuildProgress
from ._changes import Change, ChangeKind, StreamPosition
from ._checkpoints import CheckpointStore, StreamProgress
from ._process import Policy, TrackingStore, UnitCommits, process_manager
from ._projection import EffectSink, History, Projection
from ._source import ChangeFeed, ChangeSource, ScannableStore, StartAt, TrimmedPolicy

__all__ = [
    "BatchOutcome",
    "Change",
    "ChangeFeed",
    "ChangeKind",
    "ChangeSource",
    "CheckpointStore",
    "EffectSink",
    "History",
    "Policy",
    "Projection",
    "RebuildProgress",
    "ScannableStore",
    "StartAt",
    "StreamPosition",
    "StreamProgress",
    "TrackingStore",
    "TrimmedPolicy",
    "UnitCommits",
    "process_manager",
]
