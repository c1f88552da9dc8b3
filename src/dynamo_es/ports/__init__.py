"""The ports: every protocol a store implements, sync and async side by side, with the values they carry.

Adapters (``memory``, ``dynamodb``) implement these and import them from these public modules.
"""
