"""``dynamo-es project``: rebuild a projection from the table, list and replay its parked streams."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any, TextIO

from .projections import Projection, RebuildProgress

__all__ = ["add_project_commands", "run_project_command"]


def add_project_commands(commands: Any) -> None:
    """Add ``project rebuild|parked|replay`` to the CLI's sub-commands."""
    project = commands.add_parser("project", help="rebuild a projection, list or replay its parked streams")
    actions = project.add_subparsers(dest="action", required=True, metavar="ACTION")
    target_help = "MODULE:NAME of a Projection, or of a function returning one (e.g. handler:projection)"
    rebuild = actions.add_parser("rebuild", help="read every event from the table, then follow the stream")
    rebuild.add_argument("target", metavar="TARGET", help=target_help)
    rebuild.add_argument("--segments", type=int, default=4, metavar="N", help="parallel Scan segments (threads)")
    rebuild.add_argument("--no-follow", action="store_true", help="stop after the table; do not follow the stream")
    parked = actions.add_parser("parked", help="list parked streams, one JSON line each")
    parked.add_argument("target", metavar="TARGET", help=target_help)
    replay = actions.add_parser("replay", help="unpark and apply parked streams (all, or the ones named)")
    replay.add_argument("target", metavar="TARGET", help=target_help)
    replay.add_argument("stream_ids", nargs="*", metavar="STREAM_ID", help="e.g. BankAccount:acc-1")


def run_project_command(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    """Carry out ``dynamo-es project ...``."""
    projection = load_projection(args.target, parser)
    if args.action == "rebuild":
        report = projection.rebuild(segments=args.segments, follow=not args.no_follow, on_progress=_progress_bar)
        print(file=sys.stderr)
        print(_line(_summary(projection, report)), file=out)
    elif args.action == "parked":
        for stream_id, progress in sorted(projection.parked().items()):
            document = {"streamId": stream_id, "appliedVersion": progress.version, "failures": progress.failures}
            print(_line({**document, "error": progress.error}), file=out)
    else:
        outcome = projection.replay_parked(args.stream_ids or None)
        print(_line({"applied": outcome.applied, "parkedAgain": list(outcome.parked)}), file=out)


def load_projection(target: str, parser: argparse.ArgumentParser) -> Projection:
    """The Projection named by ``MODULE:NAME`` (the current directory is importable)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        parser.error(f"TARGET must be MODULE:NAME, not {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    importlib.invalidate_caches()
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        parser.error(f"cannot load {target!r}: {error}")
    projection = found() if callable(found) and not isinstance(found, Projection) else found
    if not isinstance(projection, Projection):
        parser.error(f"{target!r} is a {type(projection).__name__}, not a Projection")
    return projection


def _progress_bar(progress: RebuildProgress) -> None:
    state = "table read" if progress.done else "reading the table"
    line = f"\r{state}: {progress.read:,} events, {progress.applied:,} applied, {progress.events_per_second:,.0f}/s"
    print(line, end="", file=sys.stderr, flush=True)


def _summary(projection: Projection, report: RebuildProgress) -> dict[str, Any]:
    return {
        "projection": projection.name,
        "read": report.read,
        "applied": report.applied,
        "seconds": round(report.seconds, 3),
        "eventsPerSecond": round(report.events_per_second),
    }


def _line(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False)
