"""``dynamo-es project``: rebuild a projection from the table, list and replay its parked streams.

The target is ``MODULE:NAME`` of a `Projection`, or of a function that returns one. The global
options (``--table``, ``--endpoint-url``, ``--region``) are set as their ``DYNAMO_ES_*``
variables while the module is imported and the function called, so settings built with
``EventStoreSettings.from_env()`` see them; a projection whose store uses other settings is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import attrs

from ..projections import Projection, RebuildProgress

__all__ = ["add_project_commands", "run_project_command"]

_VARIABLES = {
    "table": ("DYNAMO_ES_EVENTS_TABLE_NAME", "events_table_name"),
    "endpoint_url": ("DYNAMO_ES_ENDPOINT_URL", "endpoint_url"),
    "region": ("DYNAMO_ES_REGION", "region"),
}
_TARGET_HELP = "MODULE:NAME of a Projection, or of a function returning one (e.g. handler:build_projection)"


def add_project_commands(commands: Any, after: argparse.ArgumentParser) -> None:
    """Add ``project rebuild|parked|replay`` to the CLI's sub-commands (``after``: the global options)."""
    project = commands.add_parser("project", help="rebuild a projection, list or replay its parked streams")
    actions = project.add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild = actions.add_parser(
        "rebuild", parents=[after], help="read every event from the table, then the stream until caught up; exit"
    )
    _target(rebuild)
    rebuild.add_argument("--segments", type=int, default=4, metavar="N", help="parallel Scan segments (threads)")
    rebuild.add_argument("--no-follow", action="store_true", help="read the table only, not the stream after it")
    _target(actions.add_parser("parked", parents=[after], help="list parked streams, one JSON line each"))
    replay = actions.add_parser(
        "replay", parents=[after], help="unpark and apply parked streams (all, or the ones named)"
    )
    _target(replay)
    replay.add_argument("stream_ids", nargs="*", metavar="STREAM_ID", help="e.g. BankAccount:acc-1")


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    parser.add_argument(
        "--name", metavar="NAME", help="the projection under this name (e.g. a read model rebuilt anew)"
    )
    parser.add_argument(
        "--arg", dest="factory_args", action="append", default=[], metavar="KEY=VALUE",
        help="a keyword argument (a string) for the function TARGET names; repeatable",
    )  # fmt: skip


def run_project_command(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    """Carry out ``dynamo-es project ...``; the exit code."""
    with _global_settings_in_env(args):
        projection = load_projection(args.target, parser, _factory_args(args.factory_args, parser))
    _check_settings(projection, args, parser)
    if args.name:
        projection = attrs.evolve(projection, name=args.name)
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
    return 0


@contextlib.contextmanager
def _global_settings_in_env(args: argparse.Namespace) -> Iterator[None]:
    """The given global options as ``DYNAMO_ES_*`` variables, for the block (then as they were)."""
    given = {variable: getattr(args, name) for name, (variable, _) in _VARIABLES.items() if getattr(args, name, None)}
    saved = {variable: os.environ.get(variable) for variable in given}
    os.environ.update(given)
    try:
        yield
    finally:
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


def _check_settings(projection: Projection, args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse a projection whose stores ignore the global options given (they would mean nothing)."""
    for store, names in ((projection.store, tuple(_VARIABLES)), (projection.checkpoints, ("endpoint_url", "region"))):
        settings = getattr(store, "settings", None)
        for name in names:
            variable, attribute = _VARIABLES[name]
            wanted = getattr(args, name, None)
            if wanted and settings is not None and getattr(settings, attribute) != wanted:
                parser.error(
                    f"--{name.replace('_', '-')} {wanted}: the projection's {type(store).__name__} uses "
                    f"{getattr(settings, attribute)!r}; build its settings with EventStoreSettings.from_env() "
                    f"(which reads {variable}) so the option applies"
                )


def _factory_args(pairs: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    arguments: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.isidentifier():
            parser.error(f"--arg takes KEY=VALUE, not {pair!r}")
        arguments[key] = value
    return arguments


def load_projection(
    target: str, parser: argparse.ArgumentParser, arguments: dict[str, str] | None = None
) -> Projection:
    """The Projection named by ``MODULE:NAME`` (the current directory is importable), built with ``arguments``."""
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
    if isinstance(found, Projection):
        if arguments:
            parser.error(f"{target!r} is a Projection, not a function: --arg does not apply")
        return found
    projection = _called(found, target, arguments or {}, parser) if callable(found) else found
    if not isinstance(projection, Projection):
        hint = (
            " (the command runs sync projections: build one on the sync store)"
            if "Async" in type(projection).__name__
            else ""
        )
        parser.error(f"{target!r} is a {type(projection).__name__}, not a Projection{hint}")
    return projection


def _called(factory: Any, target: str, arguments: dict[str, str], parser: argparse.ArgumentParser) -> Any:
    """``factory(**arguments)``; arguments it does not take are a usage error, its own errors its own."""
    try:
        inspect.signature(factory).bind(**arguments)
    except TypeError as error:
        parser.error(f"cannot call {target!r} with {sorted(arguments) or 'no arguments'}: {error}")
    except ValueError:  # no signature to check (a builtin): let the call say
        pass
    return factory(**arguments)


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
        "parked": len(projection.parked()),
    }


def _line(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False)
