"""Credentials for a local endpoint: DynamoDB Local accepts any, so none need configuring.

When the settings point at a loopback address (DynamoDB Local on this machine), give no keys,
and the environment names no AWS credentials or profile, placeholder keys are used. Nothing
else is looked up (no instance metadata), so a local run never waits on, or calls, the network.
Against AWS, botocore's own credential chain applies unchanged.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from ...settings import EventStoreSettings

__all__ = ["PLACEHOLDER_KEYS", "credentials_for"]

PLACEHOLDER_KEYS = ("local", "local")
"""The access key id and secret used for a local endpoint without credentials."""
_CONFIGURED = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE")


def credentials_for(settings: EventStoreSettings) -> tuple[str | None, str | None]:
    """The (access key id, secret) to give botocore: the settings', placeholders, or None for its chain."""
    if settings.aws_access_key_id or settings.aws_secret_access_key:
        return settings.aws_access_key_id, settings.aws_secret_access_key
    if _is_loopback(settings.endpoint_url) and not any(os.environ.get(name) for name in _CONFIGURED):
        return PLACEHOLDER_KEYS
    return None, None


def _is_loopback(endpoint_url: str | None) -> bool:
    host = urlsplit(endpoint_url).hostname if endpoint_url else None
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
