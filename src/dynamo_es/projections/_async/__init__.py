"""The hand-written source of the projection runners; ``../_sync/`` is generated from it."""
