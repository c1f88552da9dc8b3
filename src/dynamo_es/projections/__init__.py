"""Read models: changes, positions, the checkpoint protocol and the projection runner (store-agnostic)."""

from ..core.changes import Change, ChangeKind, StreamPosition
from ..core.reading import ChangeDecoder, Selection
from ..ports.checkpoints import CheckpointStore, EffectSink, StreamProgress, TrackingStore
from ..ports.source import ChangeFeed, ChangeReader, ChangeSource, ScannableStore, StartAt, TrimmedPolicy
from ._batch import BatchOutcome, RebuildProgress
from ._handlers import handles
from ._rules import History
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
