"""``dynamo-es status``: every projection's position, lag, parked and failing streams; the outbox backlog."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any, TextIO

import attrs
from cattrs.gen import make_dict_unstructure_fn, override

from ..core.serialization import make_converter
from ..dynamodb import DynamoDBEventStore, SystemStatus, read_status

__all__ = ["EXIT_PARKED", "add_status_command", "run_status"]

EXIT_PARKED = 5
"""The exit code of ``status`` when a stream is parked somewhere (for a health check)."""

_COLUMNS = ("PROJECTION", "SHARDS", "LAG", "STREAMS", "PARKED", "FAILING", "UPDATED")


def add_status_command(commands: Any) -> None:
    """Add ``status`` to the CLI's sub-commands."""
    status = commands.add_parser(
        "status", help=f"projections' lag, parked and failing streams, and the outbox; exit {EXIT_PARKED} if parked"
    )
    status.add_argument("--json", action="store_true", help="one JSON document instead of a table")


def run_status(store: DynamoDBEventStore, args: argparse.Namespace, out: TextIO) -> int:
    """Print the status; `EXIT_PARKED` when a stream is parked, else 0."""
    status = read_status(store)
    if args.json:
        document = {**_CONVERTER.unstructure(status), "parked": status.parked}
        print(json.dumps(document, ensure_ascii=False), file=out)
    else:
        _print_table(status, out)
    return EXIT_PARKED if status.parked else 0


def _camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _camel_case_converter() -> Any:
    """The project's converter, writing attrs classes with camelCase keys (as the other commands print)."""
    converter = make_converter()

    def factory(cls: type) -> Any:
        renames = {field.name: override(rename=_camel_case(field.name)) for field in attrs.fields(cls)}
        return make_dict_unstructure_fn(cls, converter, **renames)  # type: ignore[arg-type]  # cattrs' **kwargs

    converter.register_unstructure_hook_factory(attrs.has, factory)
    return converter


_CONVERTER = _camel_case_converter()


def _print_table(status: SystemStatus, out: TextIO) -> None:
    rows = [_COLUMNS] + [
        (
            projection.name,
            str(projection.shards),
            _seconds(projection.lag_seconds),
            str(projection.streams),
            str(projection.parked),
            str(projection.failing),
            _time(projection.updated_at),
        )
        for projection in status.projections
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    for row in rows if status.projections else []:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)
    if not status.projections:
        print("no projections in the checkpoints table", file=out)
    print(_outbox_line(status), file=out)


def _outbox_line(status: SystemStatus) -> str:
    outbox = status.outbox
    line = f"outbox: {outbox.backlog} undispatched"
    if outbox.oldest_timestamp is not None:
        age = (status.read_at - outbox.oldest_timestamp).total_seconds()
        line += f", oldest {outbox.oldest_stream_id} v{outbox.oldest_version} written {_seconds(age)} ago"
    return line


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f}s"
    return f"{value / 60:.0f}m" if value < 7200 else f"{value / 3600:.1f}h"


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(timespec="seconds")
