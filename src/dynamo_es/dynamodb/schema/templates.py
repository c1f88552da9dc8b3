"""Infrastructure as code for the tables the settings describe: CloudFormation, Terraform, IAM.

Everything is derived from the PynamoDB models the stores create their tables from (keys,
attribute types, the outbox index, the stream view, billing), so a template and ``create-table``
cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import attrs
from pynamodb.attributes import TTLAttribute
from pynamodb.models import Model

from ...settings import EventStoreSettings
from ..flows.checkpoints import checkpoint_model
from .keys import key_model
from .model import archive_model, event_model
from .snapshots import snapshot_model

__all__ = ["Statement", "TableSpec", "cloudformation", "iam_statements", "table_specs", "terraform"]

Role = Literal["application", "projection"]


@attrs.frozen
class TableSpec:
    """One table as a template declares it."""

    logical_id: str
    """CloudFormation resource name (``EventsTable``)."""
    resource: str
    """Terraform resource name (``events``)."""
    name: str
    key_schema: list[dict[str, Any]]
    attributes: list[dict[str, Any]]
    indexes: list[dict[str, Any]]
    stream_view: str | None
    capacity: tuple[int, int] | None
    """Read and write units when provisioned; None for on-demand."""
    ttl_attribute: str | None = None
    """The attribute DynamoDB's TTL reads (the events and archive tables')."""


@attrs.frozen
class Statement:
    """An IAM statement; resources are (table, suffix) pairs resolved per template language."""

    sid: str
    actions: list[str]
    resources: list[tuple[str, str]]
    """``("events", "")`` the table, ``("events", "/index/outbox")`` its index, ``("events", "stream")`` its stream;
    ``("read_models", "")`` the read-model tables, a parameter of the template."""


def table_specs(settings: EventStoreSettings) -> list[TableSpec]:
    """The events, checkpoints, snapshots, keys and archive tables, from their models.

    The keys table holds data subjects' keys for crypto-shredding, the archive table archived
    streams (the events table's schema, no stream); each stays empty without its feature.
    """
    models: list[tuple[str, str, type[Model]]] = [
        ("EventsTable", "events", event_model(settings)),
        ("CheckpointsTable", "checkpoints", checkpoint_model(settings)),
        ("SnapshotsTable", "snapshots", snapshot_model(settings)),
        ("KeysTable", "keys", key_model(settings)),
        ("ArchiveTable", "archive", archive_model(settings)),
    ]
    return [_spec(logical, resource, model, settings) for logical, resource, model in models]


def _spec(logical: str, resource: str, model: type[Model], settings: EventStoreSettings) -> TableSpec:
    schema = model._get_schema()
    capacity = None
    if not settings.use_on_demand_capacity:
        capacity = (settings.read_capacity_units, settings.write_capacity_units)
    indexes = [
        {
            "IndexName": index["index_name"],
            "KeySchema": _hash_first(index["key_schema"]),
            "Projection": index["projection"],
        }
        for index in schema["global_secondary_indexes"]
    ]
    return TableSpec(
        logical_id=logical,
        resource=resource,
        name=model.Meta.table_name,
        key_schema=_hash_first(schema["key_schema"]),
        attributes=[dict(definition) for definition in schema["attribute_definitions"]],
        indexes=indexes,
        stream_view=getattr(model.Meta, "stream_view_type", None),
        capacity=capacity,
        ttl_attribute=next((a.attr_name for a in model.get_attributes().values() if isinstance(a, TTLAttribute)), None),
    )


_EVENTS = ("events", "archive")
"""The tables that hold events: a template never deletes them with the stack."""


def _hash_first(keys: Any) -> list[dict[str, Any]]:
    """A key schema with the partition key first, as CloudFormation and DynamoDB list it."""
    return sorted((dict(entry) for entry in keys), key=lambda entry: entry["KeyType"] != "HASH")


_PROJECTION_EVENTS = [
    "dynamodb:ConditionCheckItem",  # a process manager's commit: version checks
    "dynamodb:DescribeTable",
    "dynamodb:PutItem",  # a process manager's commit: its new events
    "dynamodb:Query",  # gap filling, replays
    "dynamodb:Scan",  # rebuilds
]
"""What a projection (or process manager) does to the events table."""
_READ_MODEL_WRITES = ["dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
"""What an exactly-once read model's effects do to its tables (in the checkpoint's transaction)."""
_SNAPSHOTS = ["dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:Query"]
"""What snapshots need: save, load the latest, and delete them with their aggregate."""
_KEYS = ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
"""What crypto-shredding does to the keys table: read a key, add one, forget a subject."""
_ARCHIVE = ["dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:Query"]
"""What archiving does to the archive table: move events in and out (in transactions), load them."""
KMS = "kms"
"""The "table" of a statement's resource that is a KMS key: its suffix is the key's ARN."""
READ_MODELS_PARAMETER = "ReadModelTableArns"
"""The CloudFormation parameter (a comma-delimited list) naming the read-model tables' ARNs."""
READ_MODELS_VARIABLE = "read_model_table_arns"
"""The Terraform variable (a list of strings) naming the read-model tables' ARNs."""


def iam_statements(settings: EventStoreSettings, role: Role, *, data_keys: Sequence[str] = ()) -> list[Statement]:
    """Least-privilege statements for an application using the stores, or for a projection Lambda.

    ``data_keys``: the ARNs of the KMS keys that wrap data keys (crypto-shredding, `KmsKeyWrapper`);
    the application may make and unwrap data keys with them, a projection unwrap them.
    """
    statements = _table_statements(settings, role)
    if data_keys:
        actions = ["kms:Decrypt"] if role == "projection" else ["kms:Decrypt", "kms:GenerateDataKey"]
        statements.append(Statement("DataKeys", actions, [(KMS, arn) for arn in data_keys]))
    return statements


def _table_statements(settings: EventStoreSettings, role: Role) -> list[Statement]:
    reads = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    stream = [Statement("ReadEventsStream", reads, [("events", "stream")])]
    if role == "projection":
        return [
            *stream,
            Statement("Events", _PROJECTION_EVENTS, [("events", "")]),
            Statement(
                "Checkpoints",
                [
                    "dynamodb:BatchGetItem",
                    "dynamodb:DescribeTable",
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:UpdateItem",
                ],
                [("checkpoints", "")],
            ),
            Statement("ReadModels", _READ_MODEL_WRITES, [("read_models", "")]),
            Statement("Keys", ["dynamodb:DescribeTable", "dynamodb:GetItem"], [("keys", "")]),
        ]
    events = ["dynamodb:ConditionCheckItem", "dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:Query"]
    statements = [
        Statement("Events", [*events, "dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:UpdateItem"], [("events", "")]),
        Statement("Outbox", ["dynamodb:Query"], [("events", "/index/outbox")]),
        Statement(
            "Checkpoints",
            ["dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:Query", "dynamodb:UpdateItem"],
            [("checkpoints", "")],
        ),
        Statement("Snapshots", _SNAPSHOTS, [("snapshots", "")]),
        Statement("Keys", _KEYS, [("keys", "")]),
        Statement("Archive", _ARCHIVE, [("archive", "")]),
    ]
    return [*statements, *stream] if settings.enable_streams else statements


# -- CloudFormation -----------------------------------------------------------------------------


def cloudformation(settings: EventStoreSettings, *, iam: bool = False, data_keys: Sequence[str] = ()) -> dict[str, Any]:
    """A CloudFormation template of the tables (and, with ``iam``, two managed policies; see `iam_statements`)."""
    specs = table_specs(settings)
    resources: dict[str, Any] = {spec.logical_id: _cfn_table(spec) for spec in specs}
    parameters: dict[str, Any] = {}
    if iam:
        resources["ApplicationPolicy"] = _cfn_policy(settings, "application", specs, data_keys)
        resources["ProjectionLambdaPolicy"] = _cfn_policy(settings, "projection", specs, data_keys)
        parameters[READ_MODELS_PARAMETER] = {
            "Type": "CommaDelimitedList",
            "Description": "ARNs of the tables exactly-once read models write to (the projection policy)",
        }
    outputs: dict[str, Any] = {f"{spec.logical_id}Name": {"Value": {"Ref": spec.logical_id}} for spec in specs}
    if specs[0].stream_view:
        outputs["EventsStreamArn"] = {"Value": {"Fn::GetAtt": ["EventsTable", "StreamArn"]}}
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"dynamo-es tables for {settings.events_table_name} (run the application with "
        "DYNAMO_ES_CREATE_TABLE_IF_NOT_EXISTS=false)",
    }
    if parameters:
        template["Parameters"] = parameters
    return {**template, "Resources": resources, "Outputs": outputs}


def _cfn_table(spec: TableSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "TableName": spec.name,
        "BillingMode": "PROVISIONED" if spec.capacity else "PAY_PER_REQUEST",
        "AttributeDefinitions": spec.attributes,
        "KeySchema": spec.key_schema,
    }
    throughput = _cfn_throughput(spec)
    if throughput:
        properties["ProvisionedThroughput"] = throughput
    if spec.indexes:
        properties["GlobalSecondaryIndexes"] = [
            {**index, **({"ProvisionedThroughput": throughput} if throughput else {})} for index in spec.indexes
        ]
    if spec.stream_view:
        properties["StreamSpecification"] = {"StreamViewType": spec.stream_view}
    if spec.ttl_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": spec.ttl_attribute, "Enabled": True}
    retain = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"} if spec.resource in _EVENTS else {}
    return {"Type": "AWS::DynamoDB::Table", **retain, "Properties": properties}


def _cfn_throughput(spec: TableSpec) -> dict[str, int] | None:
    if spec.capacity is None:
        return None
    return {"ReadCapacityUnits": spec.capacity[0], "WriteCapacityUnits": spec.capacity[1]}


def _cfn_policy(
    settings: EventStoreSettings, role: Role, specs: list[TableSpec], data_keys: Sequence[str]
) -> dict[str, Any]:
    logical = {spec.resource: spec.logical_id for spec in specs}
    statements = [
        {
            "Sid": statement.sid,
            "Effect": "Allow",
            "Action": statement.actions,
            "Resource": _cfn_resources(statement, logical),
        }
        for statement in iam_statements(settings, role, data_keys=data_keys)
    ]
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "Description": f"dynamo-es: least privilege for {_WHO[role]}",
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
        },
    }


_WHO = {"application": "the application", "projection": "a projection Lambda"}


def _cfn_resources(statement: Statement, logical: dict[str, str]) -> Any:
    if statement.resources == [("read_models", "")]:
        return {"Ref": READ_MODELS_PARAMETER}  # a list parameter is the whole Resource
    return [suffix if table == KMS else _cfn_arn(logical[table], suffix) for table, suffix in statement.resources]


def _cfn_arn(logical_id: str, suffix: str) -> Any:
    if suffix == "stream":
        return {"Fn::GetAtt": [logical_id, "StreamArn"]}
    if suffix:
        return {"Fn::Sub": f"${{{logical_id}.Arn}}{suffix}"}
    return {"Fn::GetAtt": [logical_id, "Arn"]}


# -- Terraform -----------------------------------------------------------------------------------


def terraform(settings: EventStoreSettings, *, iam: bool = False, data_keys: Sequence[str] = ()) -> str:
    """Terraform (HCL) ``aws_dynamodb_table`` resources (and, with ``iam``, two ``aws_iam_policy``)."""
    specs = table_specs(settings)
    blocks = [
        f"# dynamo-es tables for {settings.events_table_name}; run the application with "
        "DYNAMO_ES_CREATE_TABLE_IF_NOT_EXISTS=false",
        *(_tf_table(spec) for spec in specs),
    ]
    if iam:
        blocks += [
            _tf_policy(settings, "application", data_keys),
            _tf_read_models_variable(),
            _tf_policy(settings, "projection", data_keys),
        ]
    return "\n\n".join(blocks) + "\n"


def _tf_read_models_variable() -> str:
    return "\n".join(
        [
            f'variable "{READ_MODELS_VARIABLE}" {{',
            '  description = "ARNs of the tables exactly-once read models write to (the projection policy)"',
            "  type        = list(string)",
            "  default     = []",
            "}",
        ]
    )


def _tf_table(spec: TableSpec) -> str:
    keys = {entry["KeyType"]: entry["AttributeName"] for entry in spec.key_schema}
    lines: list[str] = [f'resource "aws_dynamodb_table" "{spec.resource}" {{']
    lines.append(f"  name         = {json.dumps(spec.name)}")
    lines.append(f'  billing_mode = "{"PROVISIONED" if spec.capacity else "PAY_PER_REQUEST"}"')
    lines.append(f"  hash_key     = {json.dumps(keys['HASH'])}")
    if "RANGE" in keys:
        lines.append(f"  range_key    = {json.dumps(keys['RANGE'])}")
    lines += _tf_capacity(spec, indent="  ")
    if spec.stream_view:
        lines += ["  stream_enabled   = true", f"  stream_view_type = {json.dumps(spec.stream_view)}"]
    for attribute in spec.attributes:
        lines += ["", "  attribute {", f"    name = {json.dumps(attribute['AttributeName'])}"]
        lines += [f"    type = {json.dumps(attribute['AttributeType'])}", "  }"]
    for index in spec.indexes:
        lines += _tf_index(spec, index)
    if spec.ttl_attribute:
        lines += [
            "",
            "  ttl {",
            f"    attribute_name = {json.dumps(spec.ttl_attribute)}",
            "    enabled        = true",
            "  }",
        ]
    if spec.resource in _EVENTS:
        lines += ["", "  lifecycle {", "    prevent_destroy = true", "  }"]
    return "\n".join([*lines, "}"])


def _tf_capacity(spec: TableSpec, *, indent: str) -> list[str]:
    if spec.capacity is None:
        return []
    return [f"{indent}read_capacity  = {spec.capacity[0]}", f"{indent}write_capacity = {spec.capacity[1]}"]


def _tf_index(spec: TableSpec, index: dict[str, Any]) -> list[str]:
    keys = {entry["KeyType"]: entry["AttributeName"] for entry in index["KeySchema"]}
    lines = ["", "  global_secondary_index {", f"    name            = {json.dumps(index['IndexName'])}"]
    lines.append(f"    hash_key        = {json.dumps(keys['HASH'])}")
    if "RANGE" in keys:
        lines.append(f"    range_key       = {json.dumps(keys['RANGE'])}")
    lines.append(f"    projection_type = {json.dumps(index['Projection']['ProjectionType'])}")
    return [*lines, *_tf_capacity(spec, indent="    "), "  }"]


def _tf_policy(settings: EventStoreSettings, role: Role, data_keys: Sequence[str]) -> str:
    statements = [
        {
            "Sid": statement.sid,
            "Effect": "Allow",
            "Action": statement.actions,
            "Resource": _TF_READ_MODELS
            if statement.resources == [("read_models", "")]
            else [suffix if table == KMS else _tf_arn(table, suffix) for table, suffix in statement.resources],
        }
        for statement in iam_statements(settings, role, data_keys=data_keys)
    ]
    document = json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2)
    document = document.replace(json.dumps(_TF_READ_MODELS), f"var.{READ_MODELS_VARIABLE}")
    body = "\n".join("  " + line for line in document.splitlines()).lstrip()
    return "\n".join(
        [
            f'resource "aws_iam_policy" "dynamo_es_{role}" {{',
            f'  name   = "dynamo-es-{role}-{settings.events_table_name}"',
            f"  policy = jsonencode({body})",
            "}",
        ]
    )


_TF_READ_MODELS = "<read-model tables>"
"""Stands in the JSON for the variable, which is an HCL expression, not a string."""


def _tf_arn(table: str, suffix: str) -> str:
    if suffix == "stream":
        return f"${{aws_dynamodb_table.{table}.stream_arn}}"
    return f"${{aws_dynamodb_table.{table}.arn}}{suffix}"
