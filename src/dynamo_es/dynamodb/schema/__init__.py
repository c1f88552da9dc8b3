"""The DynamoDB schema: the PynamoDB models (the one item schema), limits, tables, templates and migration."""
