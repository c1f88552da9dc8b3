"""Read models: changes, positions, the checkpoint protocol and the projection runner (store-agnostic)."""

from ._batch import BatchOutcome, RebuildProgress
from ._changes import Change, ChangeKind, StreamPosition
from ._checkpoints import CheckpointStore, EffectSink, StreamProgress, TrackingStore
from ._handlers import handles
from ._reading import ChangeDecoder, Selection
from ._rules import History
from ._source import ChangeFeed, ChangeReader, ChangeSource, ScannableStore, StartAt, TrimmedPolicy
from ._sync.process import Policy, UnitCommits, process_manager
from ._sync.projection import Projection

__all__ = [
    "BatchOutcome",
    "Change",
    "ChangeDecoder",
    "ChangeFeed",
    "ChangeKind",
    "ChangeReader",
    "ChangeSource",
    "CheckpointStore",
    "EffectSink",
    "History",
    "Policy",
    "Projection",
    "RebuildProgress",
    "ScannableStore",
    "Selection",
    "StartAt",
    "StreamPosition",
    "StreamProgress",
    "TrackingStore",
    "TrimmedPolicy",
    "UnitCommits",
    "handles",
    "process_manager",
]
