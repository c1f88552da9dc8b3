"""The sync application layer, generated from ``../_async/`` by ``scripts/unasync.py``: do not edit it."""
