"""dynamo-es stream delete and dynamo-es forget, against DynamoDB Local: a dry run changes nothing, --yes acts."""

from __future__ import annotations

import json

import hcl2
import pytest

from dynamo_es import DynamoDBEventStore, DynamoDBSnapshotStore, EventStoreSettings, Snapshot, SubjectForgotten
from dynamo_es.dynamodb import DynamoDBKeyStore
from dynamo_es.exceptions import StreamArchivedError, StreamDeletedError, StreamTruncatedError

from ..conftest import cli
from .test_cli import seed

pytestmark = pytest.mark.ddblocal


class TestStreamDelete:
    def test_neither_yes_nor_dry_run_is_a_usage_error(self, cli_env: EventStoreSettings) -> None:
        """Without --yes or --dry-run the command refuses (exit 2) and deletes nothing."""
        aggregate_id = seed(cli_env)
        with pytest.raises(SystemExit) as exited:
            cli("stream", "delete", "Parcel", aggregate_id)
        assert exited.value.code == 2
        assert len(DynamoDBEventStore(cli_env).load(aggregate_id, "Parcel")) == 3

    def test_a_dry_run_says_what_would_go_and_changes_nothing(self, cli_env: EventStoreSettings) -> None:
        """--dry-run names the stream and its three events; the stream still loads."""
        aggregate_id = seed(cli_env)
        code, output = cli("stream", "delete", "Parcel", aggregate_id, "--dry-run")
        assert code == 0
        plan = "3 events (versions 1-3), leaving two StreamDeleted marks"
        assert output == f"dry run: would delete Parcel:{aggregate_id}: {plan}\n"
        assert len(DynamoDBEventStore(cli_env).load(aggregate_id, "Parcel")) == 3

    def test_yes_deletes_and_a_dry_run_then_says_it_is_deleted(self, cli_env: EventStoreSettings) -> None:
        """--yes deletes (with the reason), the stream loads as deleted, and a dry run reports nothing left."""
        aggregate_id = seed(cli_env)
        code, output = cli("stream", "delete", "Parcel", aggregate_id, "--yes", "--reason", "test data")
        assert code == 0 and output.startswith(f"deleted Parcel:{aggregate_id} after version 3: 3 items removed")
        with pytest.raises(StreamDeletedError):
            DynamoDBEventStore(cli_env).load(aggregate_id, "Parcel")
        code, output = cli("stream", "delete", "Parcel", aggregate_id, "--dry-run")
        assert output == f"dry run: Parcel:{aggregate_id} was deleted after version 3; 0 events would be removed\n"

    def test_a_stale_expected_version_refuses(self, cli_env: EventStoreSettings) -> None:
        """--expected-version other than the stream's exits 1 naming both versions; nothing is deleted."""
        aggregate_id = seed(cli_env)
        code, _ = cli("stream", "delete", "Parcel", aggregate_id, "--yes", "--expected-version", "2")
        assert code == 1
        assert len(DynamoDBEventStore(cli_env).load(aggregate_id, "Parcel")) == 3

    def test_events_of_a_deleted_stream_say_it_was_deleted(
        self, cli_env: EventStoreSettings, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """dynamo-es events on a deleted stream exits 1 with the deletion's message."""
        aggregate_id = seed(cli_env)
        cli("stream", "delete", "Parcel", aggregate_id, "--yes", "--reuse-id")
        DynamoDBEventStore(cli_env).append(aggregate_id, "Parcel", [], 0)
        code, _ = cli("events", "Parcel", aggregate_id)
        assert code == 0  # reused: an empty stream again
        other = seed(cli_env)
        cli("stream", "delete", "Parcel", other, "--yes")
        code, _ = cli("events", "Parcel", other)
        assert code == 1 and f"stream Parcel:{other} was deleted (after version 3)" in capsys.readouterr().err


class TestForget:
    def test_forget_needs_yes_and_a_dry_run_changes_nothing(self, cli_env: EventStoreSettings) -> None:
        """A dry run of a subject with a key says it would delete it; the key is still there."""
        keys = DynamoDBKeyStore(cli_env)
        keys.add_wrapped_key("cli-subject-1", b"wrapped")
        code, output = cli("forget", "cli-subject-1", "--dry-run")
        assert code == 0 and output.startswith("dry run: would delete the data key of cli-subject-1")
        assert keys.wrapped_key("cli-subject-1") == b"wrapped"

    def test_yes_forgets_and_again_says_so(self, cli_env: EventStoreSettings) -> None:
        """--yes deletes the key and leaves the tombstone; a second run and a dry run say it is forgotten already."""
        assert cli("create-table")[0] == 0  # the announcement goes to the events table
        keys = DynamoDBKeyStore(cli_env)
        keys.add_wrapped_key("cli-subject-2", b"wrapped")
        code, output = cli("forget", "cli-subject-2", "--yes")
        assert code == 0 and output.startswith("forgot cli-subject-2")
        assert keys.is_forgotten("cli-subject-2") and keys.wrapped_key("cli-subject-2") is None
        again = cli("forget", "cli-subject-2", "--yes")[1]
        assert again == "cli-subject-2 was forgotten already: nothing changed; read models were told before\n"
        (announced,) = DynamoDBEventStore(cli_env).load("cli-subject-2", "$Subject")
        assert announced.event == SubjectForgotten("cli-subject-2")
        assert cli("forget", "cli-subject-2", "--dry-run")[1].startswith("dry run: cli-subject-2 is forgotten already")

    def test_forget_without_the_events_table_changes_nothing(self, cli_env: EventStoreSettings) -> None:
        """The announcement's table is checked first: missing, exit 4, and the key is still there."""
        keys = DynamoDBKeyStore(cli_env)
        keys.add_wrapped_key("cli-subject-3", b"wrapped")
        assert cli("forget", "cli-subject-3", "--yes")[0] == 4
        assert keys.wrapped_key("cli-subject-3") == b"wrapped"


class TestStreamTruncate:
    def test_truncate_needs_a_snapshot(self, cli_env: EventStoreSettings, capsys: pytest.CaptureFixture[str]) -> None:
        """Without a snapshot in the snapshots table, truncate exits 1 saying so; nothing is removed."""
        aggregate_id = seed(cli_env)
        DynamoDBSnapshotStore(cli_env).ensure_table()
        code, _ = cli("stream", "truncate", "Parcel", aggregate_id, "--yes")
        assert code == 1 and "has no snapshot" in capsys.readouterr().err
        assert len(DynamoDBEventStore(cli_env).load(aggregate_id, "Parcel")) == 3

    def test_truncate_behind_the_snapshot_after_a_dry_run(self, cli_env: EventStoreSettings) -> None:
        """A dry run names the first version kept; --yes removes the events before it."""
        aggregate_id = seed(cli_env, count=5)
        DynamoDBSnapshotStore(cli_env).save(
            Snapshot(aggregate_type="Parcel", aggregate_id=aggregate_id, version=4, schema_version=1, state="{}")
        )
        code, output = cli("stream", "truncate", "Parcel", aggregate_id, "--dry-run")
        assert (
            code == 0
            and output
            == f"dry run: would remove the events of Parcel:{aggregate_id} before version 4 (snapshot at 4)\n"
        )
        code, output = cli("stream", "truncate", "Parcel", aggregate_id, "--yes", "--before", "3")
        assert output == f"truncated Parcel:{aggregate_id}: it starts at version 3; 2 events removed\n"
        store = DynamoDBEventStore(cli_env)
        assert [e.version for e in store.load(aggregate_id, "Parcel", from_version=3)] == [3, 4, 5]
        with pytest.raises(StreamTruncatedError):
            store.load(aggregate_id, "Parcel")
        assert cli("stream", "truncate", "Parcel", aggregate_id, "--yes", "--before", "5")[0] == 1  # past the snapshot


class TestDataKeyPolicies:
    def test_cloudformation_grants_the_kms_key_to_both_policies(self, cli_env: EventStoreSettings) -> None:
        """--data-key-arn adds DataKeys: GenerateDataKey and Decrypt for the application, Decrypt for projections."""
        arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        code, output = cli("template", "cloudformation", "--iam", "--data-key-arn", arn)
        resources = json.loads(output)["Resources"]
        grants = {
            name: [s for s in resources[name]["Properties"]["PolicyDocument"]["Statement"] if s["Sid"] == "DataKeys"]
            for name in ("ApplicationPolicy", "ProjectionLambdaPolicy")
        }
        assert code == 0
        assert grants["ApplicationPolicy"] == [
            {"Sid": "DataKeys", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [arn]}
        ]
        assert grants["ProjectionLambdaPolicy"][0]["Action"] == ["kms:Decrypt"]

    def test_terraform_grants_it_too_and_parses(self, cli_env: EventStoreSettings) -> None:
        """The Terraform policies hold the same statement, and the output is valid HCL."""
        arn = "arn:aws:kms:eu-west-1:111122223333:alias/app-data"
        code, output = cli("template", "terraform", "--iam", "--data-key-arn", arn)
        assert code == 0 and output.count(arn) == 2 and output.count('"kms:GenerateDataKey"') == 1
        hcl2.loads(output)

    def test_a_data_key_without_iam_is_a_usage_error(self, cli_env: EventStoreSettings) -> None:
        """--data-key-arn without --iam would do nothing: exit 2."""
        assert cli("template", "cloudformation", "--data-key-arn", "arn:aws:kms:x")[0] == 2

    def test_without_a_data_key_no_kms_statement_is_granted(self, cli_env: EventStoreSettings) -> None:
        """Least privilege: no KMS action unless a key is named."""
        assert "kms:" not in cli("template", "cloudformation", "--iam")[1]


class TestStreamArchive:
    def test_archive_needs_yes_and_a_dry_run_changes_nothing(self, cli_env: EventStoreSettings) -> None:
        """Without --yes or --dry-run: exit 2; a dry run names the events and the archive table; nothing moves."""
        aggregate_id = seed(cli_env)
        with pytest.raises(SystemExit) as exited:
            cli("stream", "archive", "Parcel", aggregate_id)
        assert exited.value.code == 2
        code, output = cli("stream", "archive", "Parcel", aggregate_id, "--dry-run")
        archive = cli_env.archive_table_name
        assert (code, output) == (
            0,
            f"dry run: would move Parcel:{aggregate_id}'s 3 events to {archive}, leaving two StreamArchived marks\n",
        )
        assert len(DynamoDBEventStore(cli_env).load(aggregate_id, "Parcel")) == 3

    def test_archive_then_events_archived_then_restore(self, cli_env: EventStoreSettings) -> None:
        """--yes archives; events --archived prints them; restore --yes brings them back; again says so."""
        aggregate_id = seed(cli_env)
        assert cli("stream", "archive", "Parcel", aggregate_id, "--yes")[0] == 4  # no archive table yet
        assert cli("create-table", "--all")[0] == 0
        code, output = cli("stream", "archive", "Parcel", aggregate_id, "--yes")
        archive = cli_env.archive_table_name
        assert (code, output) == (0, f"archived Parcel:{aggregate_id}: 3 events moved to {archive} (versions 1-3)\n")
        with pytest.raises(StreamArchivedError):
            DynamoDBEventStore(cli_env).load(aggregate_id, "Parcel")
        assert cli("events", "Parcel", aggregate_id)[0] == 1
        code, output = cli("events", "Parcel", aggregate_id, "--archived")
        assert code == 0 and [json.loads(line)["version"] for line in output.splitlines()] == [1, 2, 3]
        code, output = cli("stream", "restore", "Parcel", aggregate_id, "--dry-run")
        assert output == f"dry run: would move the events of Parcel:{aggregate_id} (versions 1-3) back from {archive}\n"
        code, output = cli("stream", "restore", "Parcel", aggregate_id, "--yes")
        assert (code, output) == (0, f"restored Parcel:{aggregate_id}: 3 events moved back (versions 1-3)\n")
        assert len(DynamoDBEventStore(cli_env).load(aggregate_id, "Parcel")) == 3
        assert cli("stream", "restore", "Parcel", aggregate_id, "--yes")[1] == (
            f"Parcel:{aggregate_id} was restored already: nothing changed\n"
        )
        assert cli("stream", "restore", "Parcel", aggregate_id, "--dry-run")[1] == (
            f"dry run: Parcel:{aggregate_id} is not archived; nothing would change\n"
        )
