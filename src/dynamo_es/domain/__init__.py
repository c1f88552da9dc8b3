"""The domain layer: events, their registry and upcasters, and aggregates. It imports no persistence."""
