"""Crypto-shredding: personal data stored encrypted with its subject's key, unreadable once forgotten.

Install the extra: ``pip install 'dynamo-es[privacy]'`` (AES-GCM from the ``cryptography``
package). Mark event fields with [`subject()`][dynamo_es.domain.personal.subject] and
[`personal()`][dynamo_es.domain.personal.personal], then give the serializer a shredder::

    shredder = CryptoShredder(InMemoryKeyStore(), LocalKeyWrapper(key_encryption_key))
    # production: CryptoShredder(DynamoDBKeyStore(settings), KmsKeyWrapper("alias/my-app-data"))
    store = InMemoryEventStore(serializer=EventSerializer(shredder=shredder))
    ...
    shredder.forget("customer-7")  # every later read gives the placeholders

The events themselves are never rewritten: forgetting deletes the subject's data key.
"""

from ._keys import InMemoryKeyStore, KeyWrapper, LocalKeyWrapper
from ._kms import KmsKeyWrapper
from ._shredder import CryptoShredder

__all__ = ["CryptoShredder", "InMemoryKeyStore", "KeyWrapper", "KmsKeyWrapper", "LocalKeyWrapper"]
