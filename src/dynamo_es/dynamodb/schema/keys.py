"""The data-key item's schema: its PynamoDB model, on the settings' keys table (crypto-shredding)."""

from __future__ import annotations

import functools

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from ...settings import EventStoreSettings
from .model import table_meta

__all__ = ["KeyItem", "key_model"]


class KeyItem(Model):
    """One data subject's row: its wrapped data key, or the tombstone left by ``forget``.

    A forgotten subject keeps its row without the key, so it is never given a new one.
    """

    class Meta:  # noqa: D106  # PynamoDB's model options
        abstract = True

    subject = UnicodeAttribute(hash_key=True, attr_name="pk")
    wrapped_key = UnicodeAttribute(attr_name="wrappedKey", null=True)
    """Base64 of the data key as the key wrapper encrypted it; absent once forgotten."""
    created_at = UnicodeAttribute(attr_name="createdAt")
    forgotten_at = UnicodeAttribute(attr_name="forgottenAt", null=True)
    """When the subject was forgotten (ISO 8601, UTC); absent while it is not."""


@functools.cache
def key_model(settings: EventStoreSettings) -> type[KeyItem]:
    """The `KeyItem` model on ``settings.keys_table_name``."""
    namespace = {"Meta": table_meta(settings, settings.keys_table_name), "__module__": __name__}
    return type(f"KeyItem_{settings.keys_table_name}", (KeyItem,), namespace)
