"""The hand-written source of the application layer; ``../_sync/`` is generated from it."""
