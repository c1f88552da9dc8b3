"""The sync DynamoDB stores, generated from ``../_async/`` by ``scripts/unasync.py``: do not edit them."""
