"""dynamo-es quick start: create the table, append events, load them, and provoke a conflict.

Run it with `make demo`. It starts DynamoDB Local itself (in memory, on a free port) unless
DYNAMO_ES_ENDPOINT_URL points at a DynamoDB already running.
"""

from __future__ import annotations

import uuid

import attrs

from dynamo_es import DynamoDBEventStore, event
from dynamo_es.testing import configured_or_local


@event
@attrs.frozen
class Deposited:
    amount: int


@event
@attrs.frozen
class Withdrawn:
    amount: int


def main() -> None:
    with configured_or_local(events_table_name="QuickstartEvents") as settings:
        print(f"DynamoDB at {settings.endpoint_url}")
        store = DynamoDBEventStore(settings)
        store.ensure_table()  # creates the table (on-demand, stream on) if it is missing
        print(f"table {settings.events_table_name!r} is ready")

        account_id = f"acc-{uuid.uuid4().hex[:8]}"  # a new account each run: the demo runs again on kept data
        result = store.append(account_id, "Account", [Deposited(100), Withdrawn(30)], expected_version=0)
        print(f"appended: now at version {result.new_version}")

        for stored in store.load(account_id, "Account"):
            print(f"  v{stored.version} {stored.event_type:<10} {stored.event}  at {stored.timestamp:%H:%M:%S}")

        # Two writers both read version 2; the first to append wins.
        first = store.append(account_id, "Account", [Deposited(5)], expected_version=2)
        second = store.append(account_id, "Account", [Withdrawn(50)], expected_version=2)
        print(f"writer 1: success={first.success}, version {first.new_version}")
        print(
            f"writer 2: success={second.success}, conflict={second.conflict}: "
            f"expected {second.expected_version}, actual {second.actual_version}"
        )
        balance = sum(
            e.event.amount if isinstance(e.event, Deposited) else -e.event.amount
            for e in store.load(account_id, "Account")
        )
        print(f"balance after replay: {balance}")


if __name__ == "__main__":
    main()
