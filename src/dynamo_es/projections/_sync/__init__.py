"""The sync projection runners, generated from ``../_async/`` by ``scripts/unasync.py``: do not edit them."""
