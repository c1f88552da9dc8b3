"""The async in-memory sources (the sync modules in ``_sync/`` are generated from them)."""
