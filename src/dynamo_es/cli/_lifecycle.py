"""``dynamo-es stream delete|truncate|archive|restore`` and ``dynamo-es forget``: changes asked for twice.

Each needs ``--yes`` to act or ``--dry-run``, which prints what it would change and changes nothing;
without either, argparse refuses (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ..core.serialization import RawEventSerializer
from ..domain.personal import SEALED_STATE
from ..dynamodb import DynamoDBEventStore, DynamoDBKeyStore, DynamoDBSnapshotStore
from ..exceptions import AggregateNotFoundError, SnapshotError, StreamArchivedError, StreamDeletedError
from ..ports.keys import announce_forgotten
from ..settings import EventStoreSettings

__all__ = ["add_lifecycle_commands", "run_forget", "run_stream_command"]


def add_lifecycle_commands(commands: Any, after: argparse.ArgumentParser) -> None:
    """Add ``stream delete`` and ``forget`` to the CLI's sub-commands (``after``: the global options)."""
    stream = commands.add_parser("stream", help="delete, truncate, archive or restore a stream")
    actions = stream.add_subparsers(dest="action", required=True, metavar="ACTION")
    delete = actions.add_parser(
        "delete", parents=[after], help="delete a stream's events, leaving a StreamDeleted mark; no append after"
    )
    delete.add_argument("aggregate_type", metavar="TYPE")
    delete.add_argument("aggregate_id", metavar="ID")
    delete.add_argument("--expected-version", type=int, metavar="N", help="refuse unless the stream is at version N")
    delete.add_argument("--reason", default="", help="kept in the StreamDeleted mark, for the audit trail")
    delete.add_argument("--reuse-id", action="store_true", help="remove the marks too: the id may start again")
    _confirmation(delete)
    truncate = actions.add_parser(
        "truncate", parents=[after], help="remove a stream's events before a version, behind a snapshot"
    )
    truncate.add_argument("aggregate_type", metavar="TYPE")
    truncate.add_argument("aggregate_id", metavar="ID")
    truncate.add_argument(
        "--before", type=int, metavar="N", help="the first version to keep (default: the latest snapshot's)"
    )
    _confirmation(truncate)
    for action, text in (("archive", "move a stream's events to the archive table"), ("restore", "move them back")):
        parser = actions.add_parser(action, parents=[after], help=text)
        parser.add_argument("aggregate_type", metavar="TYPE")
        parser.add_argument("aggregate_id", metavar="ID")
        _confirmation(parser, undone=False)
    forget = commands.add_parser("forget", help="delete a data subject's key: its personal data reads as placeholders")
    forget.add_argument("subject", metavar="SUBJECT")
    _confirmation(forget)


def _confirmation(parser: argparse.ArgumentParser, *, undone: bool = True) -> None:
    choice = parser.add_mutually_exclusive_group(required=True)  # ask for it twice
    choice.add_argument("--yes", action="store_true", help="do it: this cannot be undone" if undone else "do it")
    choice.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")


def run_stream_command(settings: EventStoreSettings, args: argparse.Namespace, out: TextIO) -> None:
    """``stream delete|truncate|archive|restore``: a dry run, or the change after ``--yes``."""
    if args.action == "truncate":
        _truncate(settings, args, out)
        return
    if args.action in ("archive", "restore"):
        _move(DynamoDBEventStore(settings, serializer=RawEventSerializer()), args, out)
        return
    store = DynamoDBEventStore(settings, serializer=RawEventSerializer())
    stream_id = f"{args.aggregate_type}:{args.aggregate_id}"
    if args.dry_run:
        print(_deletion_plan(store, args), file=out)
        return
    deletion = store.delete_stream(
        args.aggregate_id,
        args.aggregate_type,
        expected_version=args.expected_version,
        reason=args.reason,
        reuse_id=args.reuse_id,
    )
    if deletion.last_version == 0:
        print(f"{stream_id} has no events: nothing deleted", file=out)
        return
    again = " (finishing an earlier deletion)" if deletion.already_deleted else ""
    left = "nothing is left: the id may start again" if deletion.reusable else "its StreamDeleted marks stay"
    print(
        f"deleted {stream_id} after version {deletion.last_version}{again}: {deletion.removed} items removed, {left}",
        file=out,
    )


def _deletion_plan(store: DynamoDBEventStore, args: argparse.Namespace) -> str:
    stream_id = f"{args.aggregate_type}:{args.aggregate_id}"
    version = store.stream_version(args.aggregate_id, args.aggregate_type)
    if version == 0:
        return f"dry run: {stream_id} has no events; nothing would change"
    try:
        store.load(args.aggregate_id, args.aggregate_type, from_version=version)
    except StreamDeletedError as deleted:
        left = len(store.read_changes(args.aggregate_id, args.aggregate_type, from_version=2, to_version=version - 1))
        return f"dry run: {stream_id} was deleted after version {deleted.last_version}; {left} events would be removed"
    marks = "then its marks, so the id could start again" if args.reuse_id else "leaving two StreamDeleted marks"
    expected = args.expected_version
    refused = f" (refused: it is at {version}, not {expected})" if expected not in (None, version) else ""
    return f"dry run: would delete {stream_id}: {version} events (versions 1-{version}), {marks}{refused}"


def _move(store: DynamoDBEventStore, args: argparse.Namespace, out: TextIO) -> None:
    """Archive or restore (or say what would move)."""
    if args.dry_run:
        print(f"dry run: {_move_plan(store, args)}", file=out)
        return
    stream_id = f"{args.aggregate_type}:{args.aggregate_id}"
    move = store.archive_stream if args.action == "archive" else store.restore_stream
    done = move(args.aggregate_id, args.aggregate_type)
    where = f"to {store.settings.archive_table_name}" if done.archived else "back"
    if done.already and not done.moved:
        print(f"{stream_id} was {args.action}d already: nothing changed", file=out)
        return
    again = f" (finishing an earlier {args.action})" if done.already else ""
    print(
        f"{args.action}d {stream_id}{again}: {done.moved} events moved {where} (versions 1-{done.last_version})",
        file=out,
    )


def _move_plan(store: DynamoDBEventStore, args: argparse.Namespace) -> str:
    stream_id, archive = f"{args.aggregate_type}:{args.aggregate_id}", store.settings.archive_table_name
    version = store.stream_version(args.aggregate_id, args.aggregate_type)
    if version == 0:
        raise AggregateNotFoundError(args.aggregate_type, args.aggregate_id)
    try:
        store.load(args.aggregate_id, args.aggregate_type, from_version=version)
    except StreamArchivedError as archived:
        if args.action == "archive":
            return f"{stream_id} is archived already (versions 1-{archived.last_version}); nothing would change"
        return f"would move the events of {stream_id} (versions 1-{archived.last_version}) back from {archive}"
    if args.action == "restore":
        return f"{stream_id} is not archived; nothing would change"
    return f"would move {stream_id}'s {version} events to {archive}, leaving two StreamArchived marks"


def _truncate(settings: EventStoreSettings, args: argparse.Namespace, out: TextIO) -> None:
    """Check the snapshots table has one at ``--before`` or later, then truncate (or say what would go)."""
    stream_id = f"{args.aggregate_type}:{args.aggregate_id}"
    snapshot = DynamoDBSnapshotStore(settings).load_latest(args.aggregate_type, args.aggregate_id)
    if snapshot is None:
        raise SnapshotError(f"{stream_id} has no snapshot: take one before truncating")
    if snapshot.state.startswith('{"' + SEALED_STATE):
        raise SnapshotError(
            f"{stream_id}'s snapshot holds personal data: truncating would make it unloadable once forgotten"
        )
    before = snapshot.version if args.before is None else args.before
    if before > snapshot.version:
        raise SnapshotError(
            f"cannot truncate {stream_id} before version {before}: its latest snapshot is at {snapshot.version}"
        )
    if args.dry_run:
        print(
            f"dry run: would remove the events of {stream_id} before version {before} (snapshot at {snapshot.version})",
            file=out,
        )
        return
    store = DynamoDBEventStore(settings, serializer=RawEventSerializer())
    truncation = store.truncate_stream(args.aggregate_id, args.aggregate_type, before)
    print(
        f"truncated {stream_id}: it starts at version {truncation.first_version}; {truncation.removed} events removed",
        file=out,
    )


def run_forget(settings: EventStoreSettings, args: argparse.Namespace, out: TextIO) -> None:
    """``forget SUBJECT``: a dry run, or the key's deletion after ``--yes``."""
    keys = DynamoDBKeyStore(settings)
    if args.dry_run:
        print(f"dry run: {_forget_plan(keys, args.subject)}", file=out)
        return
    events = DynamoDBEventStore(settings)
    events.ensure_table()  # missing: TableNotFoundError before the key is deleted, not after
    forgotten = keys.forget(args.subject)
    told = (
        "read models are told (SubjectForgotten)"
        if announce_forgotten(events, args.subject)
        else "read models were told before"
    )
    if forgotten:
        print(
            f"forgot {args.subject}: its data key is deleted; its personal data reads as placeholders; {told}", file=out
        )
    else:
        print(f"{args.subject} was forgotten already: nothing changed; {told}", file=out)


def _forget_plan(keys: DynamoDBKeyStore, subject: str) -> str:
    if keys.is_forgotten(subject):
        return f"{subject} is forgotten already; nothing would change"
    if keys.wrapped_key(subject) is None:
        return f"{subject} has no data key; a tombstone would keep it from ever getting one"
    return (
        f"would delete the data key of {subject}: its personal fields in every event would read as placeholders "
        "for good (processes holding the key in their cache keep it for up to their cache_seconds)"
    )
