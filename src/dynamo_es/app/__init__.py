"""The application layer: repositories, units of work and the outbox dispatcher, sync and async.

``_async/`` is written by hand; ``_sync/`` is generated from it by ``scripts/unasync.py`` (CI
fails when it is stale). What differs between the two lives in ``core/backends/``. The public
names are re-exported by `dynamo_es` and `dynamo_es.aio`.
"""
