"""The dynamo-es command: create and inspect the tables, read streams, follow changes, run DynamoDB Local.

Settings come from ``DYNAMO_ES_*`` environment variables, overridden by the options.

Exit codes: 0 success; 1 any other dynamo-es error; 2 bad usage; 3 DynamoDB unreachable;
4 table missing; 5 (``status``) a stream is parked; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, TextIO

import attrs

from ..core.serialization import RawEventSerializer
from ..domain.events import StoredEvent
from ..dynamodb import DynamoDBCheckpointStore, DynamoDBEventStore, DynamoDBKeyStore, DynamoDBSnapshotStore
from ..dynamodb.flows.errors import NO_CREDENTIALS, lacks_credentials
from ..exceptions import (
    ConfigurationError,
    DynamoDBLocalError,
    DynamoESError,
    EndpointUnreachableError,
    InvalidStreamError,
    TableNotFoundError,
)
from ..projections import Change
from ..settings import EventStoreSettings
from ._lifecycle import add_lifecycle_commands, run_forget, run_stream_command
from ._ops import add_ops_commands, run_local, run_migrate, run_template
from ._project import add_project_commands, run_project_command
from ._status import add_status_command, run_status

__all__ = ["main"]


def _version() -> str:
    try:
        return metadata.version("dynamo-es")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NO_TABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


GLOBAL_OPTIONS = {"table": "--table", "endpoint_url": "--endpoint-url", "region": "--region"}
"""The options that set where the tables are: before or after the command, for the commands they apply to."""
_APPLIES_TO = {"local": (), "template": ("table",)}
"""Commands that take fewer of them (every other command takes all three)."""


def options_of(command: str) -> tuple[str, ...]:
    """The global options that mean something for ``command``."""
    return _APPLIES_TO.get(command, tuple(GLOBAL_OPTIONS))


def _global_options(parser: argparse.ArgumentParser, *, default: Any, only: tuple[str, ...]) -> None:
    """The options every command takes (those in ``only``), before or after its name."""
    helps = {
        "table": "events table name (DYNAMO_ES_EVENTS_TABLE_NAME)",
        "endpoint_url": "DynamoDB endpoint, e.g. http://127.0.0.1:8000 (DYNAMO_ES_ENDPOINT_URL)",
        "region": "AWS region (DYNAMO_ES_REGION)",
    }
    for name in only:
        parser.add_argument(GLOBAL_OPTIONS[name], dest=name, default=default, help=helps[name])


def after_options(command: str) -> argparse.ArgumentParser:
    """A parent parser with the global options ``command`` takes, for use after its name."""
    after = argparse.ArgumentParser(add_help=False)
    _global_options(after, default=argparse.SUPPRESS, only=options_of(command))  # after the command, they count
    return after


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynamo-es", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"dynamo-es {_version()}")
    _global_options(parser, default=None, only=tuple(GLOBAL_OPTIONS))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    original_add = commands.add_parser
    commands.add_parser = lambda name, **kw: original_add(name, parents=[after_options(name)], **kw)  # type: ignore[method-assign]

    create = commands.add_parser("create-table", help="create the events table (and with --all the others)")
    create.add_argument("--all", action="store_true", help="also the checkpoints, snapshots, keys and archive tables")
    describe = commands.add_parser("describe", help="table status, keys, billing, stream, indexes, item count estimate")
    describe.add_argument("--all", action="store_true", help="also the checkpoints, snapshots, keys and archive tables")

    events = commands.add_parser("events", help="print one stream's events")
    events.add_argument("aggregate_type", metavar="TYPE")
    events.add_argument("aggregate_id", metavar="ID")
    events.add_argument("--from", dest="from_version", type=int, default=1, metavar="N", help="first version")
    events.add_argument("--to", dest="to_version", type=int, metavar="N", help="last version")
    events.add_argument("--format", choices=["jsonl", "table"], default="jsonl")
    events.add_argument("--archived", action="store_true", help="read an archived stream from the archive table")

    tail = commands.add_parser("tail", help="follow the table's stream, one line per change")
    tail.add_argument("--from-start", action="store_true", help="begin at the oldest kept record, not now")
    tail.add_argument("--max", type=_non_negative, metavar="N", help="exit after N changes (0: print nothing)")
    tail.add_argument("--until-idle", action="store_true", help="exit once caught up")

    outbox = commands.add_parser("outbox", help="count and list undispatched events")
    outbox.add_argument("--limit", type=_non_negative, default=20, metavar="N", help="list at most N (0: count only)")
    add_status_command(commands)
    add_project_commands(commands, after_options("project"))
    add_lifecycle_commands(commands, after_options("stream"))
    add_ops_commands(commands)
    return parser


def _check_scope(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse a global option given before a command it does not apply to (it would do nothing)."""
    for name, flag in GLOBAL_OPTIONS.items():
        if name not in options_of(args.command) and getattr(args, name, None) is not None:
            parser.error(f"{flag} does not apply to {args.command}")


def _settings(args: argparse.Namespace) -> EventStoreSettings:
    settings = EventStoreSettings.from_env()
    overrides: dict[str, Any] = {
        "events_table_name": getattr(args, "table", None),
        "endpoint_url": getattr(args, "endpoint_url", None),
        "region": getattr(args, "region", None),
        "create_table_if_not_exists": args.command == "create-table",
    }
    return attrs.evolve(settings, **{k: v for k, v in overrides.items() if v is not None})


def _event_document(stored: StoredEvent) -> dict[str, Any]:
    metadata = {
        "correlationId": stored.metadata.correlation_id,
        "causationId": stored.metadata.causation_id,
        "traceparent": stored.metadata.trace_parent,
    }
    return {
        "streamId": stored.stream_id,
        "version": stored.version,
        "eventType": stored.event_type,
        "eventId": stored.event_id,
        "timestamp": stored.timestamp.isoformat(),
        "isDispatched": stored.is_dispatched,
        "data": stored.event,
        "metadata": {**{k: v for k, v in metadata.items() if v}, **stored.metadata.extra},
    }


def _line(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, default=str)


@attrs.frozen
class _ArchiveTable:
    """The archive table, checked like the other stores' tables."""

    settings: EventStoreSettings

    def ensure_table(self) -> dict[str, Any]:
        return DynamoDBEventStore(self.settings).ensure_archive_table()


_OTHER_TABLES = (DynamoDBCheckpointStore, DynamoDBSnapshotStore, DynamoDBKeyStore, _ArchiveTable)
"""The stores whose tables ``--all`` adds to the events table."""


def _create_table(store: DynamoDBEventStore, args: argparse.Namespace, out: TextIO) -> None:
    kinds: list[Any] = [DynamoDBEventStore]
    if args.all:
        kinds += list(_OTHER_TABLES)
    for kind in kinds:
        print(_created_or_found(kind, store.settings), file=out)


def _created_or_found(kind: Any, settings: EventStoreSettings) -> str:
    """Check the table without creating it; create it only if missing. Say which it was."""
    try:
        description = kind(attrs.evolve(settings, create_table_if_not_exists=False)).ensure_table()
        verb = "exists"
    except TableNotFoundError:
        description = kind(settings).ensure_table()
        verb = "created"
    return f"table {description['TableName']} {verb}, {description['TableStatus']}"


def _describe(store: DynamoDBEventStore, args: argparse.Namespace, out: TextIO) -> None:
    tables = [store.ensure_table()]
    if args.all:
        tables += [kind(store.settings).ensure_table() for kind in _OTHER_TABLES]
    for index, table in enumerate(tables):
        if index:
            print(file=out)
        _describe_table(table, out)


def _describe_table(table: dict[str, Any], out: TextIO) -> None:
    stream = table.get("StreamSpecification", {})
    summary = {
        "table": table["TableName"],
        "status": table["TableStatus"],
        "keys": {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]},
        "billing": table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
        "stream": stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
        "streamArn": table.get("LatestStreamArn"),
        "indexes": [index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])],
        "itemCountEstimate": table.get("ItemCount", 0),
        "sizeBytesEstimate": table.get("TableSizeBytes", 0),
    }
    for key, value in summary.items():
        print(f"{key:<18} {json.dumps(value) if isinstance(value, dict | list) else value}", file=out)


def _events(store: DynamoDBEventStore, args: argparse.Namespace, out: TextIO) -> None:
    load = store.load_archived if args.archived else store.load
    events = load(args.aggregate_id, args.aggregate_type, from_version=args.from_version, to_version=args.to_version)
    if not events:
        print(f"no events in {args.aggregate_type}:{args.aggregate_id}", file=sys.stderr)
    if args.format == "jsonl":
        for stored in events:
            print(_line(_event_document(stored)), file=out)
        return
    print(f"{'VERSION':>7}  {'TIMESTAMP':<32}  {'TYPE':<24}  DATA", file=out)
    for stored in events:
        data = json.dumps(stored.event, ensure_ascii=False)
        print(f"{stored.version:>7}  {stored.timestamp.isoformat():<32}  {stored.event_type:<24}  {data}", file=out)


def _tail(store: DynamoDBEventStore, args: argparse.Namespace, out: TextIO) -> None:
    if args.max == 0:
        return
    subscription = store.subscribe_to_changes(start_at="trim_horizon" if args.from_start else "latest").start()
    print(f"following {store.settings.events_table_name} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    seen = 0
    for batch in subscription.batches(stop_when_idle=args.until_idle):
        for change in batch:
            print(_line(_change_document(change)), file=out, flush=True)
            seen += 1
            if args.max is not None and seen >= args.max:
                return


def _change_document(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind.value,
        "approximateCreationTime": change.approximate_creation_time.isoformat(),
        "sequenceNumber": change.sequence_number,
        **_event_document(change.event),
    }


def _outbox(store: DynamoDBEventStore, args: argparse.Namespace, out: TextIO) -> None:
    print(f"undispatched: {store.count_undispatched()}", file=out)
    if args.limit <= 0:
        return
    for index, stored in enumerate(store.undispatched(page_size=min(args.limit, 100))):
        if index >= args.limit:
            break
        print(_line(_event_document(stored)), file=out)


def run(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line ``argv``; return the exit code."""
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    if extras and args.command == "project" and args.action == "replay" and not any(e.startswith("-") for e in extras):
        args.stream_ids = [*args.stream_ids, *extras]  # stream ids after the options
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    out = out or sys.stdout
    _check_scope(args, parser)
    if args.command == "events" and args.to_version is not None and args.to_version < args.from_version:
        parser.error(f"--to {args.to_version} is before --from {args.from_version}")
    try:
        if args.command == "local":
            run_local(args, out)
            return EXIT_OK
        settings = _settings(args)
        if args.command == "template":
            run_template(settings, args, out)
            return EXIT_OK
        if args.command == "migrate":
            run_migrate(settings, out)
            return EXIT_OK
        if args.command == "project":
            return run_project_command(args, parser, out)
        if args.command == "stream":
            run_stream_command(settings, args, out)
            return EXIT_OK
        if args.command == "forget":
            run_forget(settings, args, out)
            return EXIT_OK
        store = DynamoDBEventStore(settings, serializer=RawEventSerializer())
        if args.command == "create-table":
            _create_table(store, args, out)
        elif args.command == "describe":
            _describe(store, args, out)
        elif args.command == "events":
            _events(store, args, out)
        elif args.command == "tail":
            _tail(store, args, out)
        elif args.command == "status":
            return run_status(store, args, out)
        else:
            _outbox(store, args, out)
    except (ConfigurationError, InvalidStreamError) as error:
        print(f"dynamo-es: {error}", file=sys.stderr)
        return EXIT_USAGE
    except EndpointUnreachableError as error:
        print(
            f"dynamo-es: {error} (is DynamoDB running? set --endpoint-url or DYNAMO_ES_ENDPOINT_URL)", file=sys.stderr
        )
        return EXIT_UNREACHABLE
    except TableNotFoundError as error:
        create = "dynamo-es create-table --all" if getattr(args, "all", False) else "dynamo-es create-table"
        print(f"dynamo-es: table {error.table_name!r} does not exist (run: {create})", file=sys.stderr)
        return EXIT_NO_TABLE
    except DynamoDBLocalError as error:
        print(f"dynamo-es: {str(error).splitlines()[0]}", file=sys.stderr)
        return EXIT_ERROR
    except DynamoESError as error:
        if lacks_credentials(error):
            print(f"dynamo-es: {NO_CREDENTIALS}", file=sys.stderr)
        else:
            print(f"dynamo-es: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()
