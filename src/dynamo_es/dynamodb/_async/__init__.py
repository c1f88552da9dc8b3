"""The hand-written source of the DynamoDB stores; ``../_sync/`` is generated from it."""
