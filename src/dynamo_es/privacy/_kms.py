"""Data keys made and unwrapped by AWS KMS: GenerateDataKey and Decrypt, through botocore."""

from __future__ import annotations

from typing import Any

import attrs
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ..exceptions import KeyManagementError
from ._keys import DATA_KEY_BYTES

__all__ = ["KmsKeyWrapper"]

CONTEXT_KEY = "dynamo-es:subject"
"""The encryption context's key: a wrapped data key decrypts only for the subject it was made for."""

_REASONS = {
    "AccessDeniedException": "access to the KMS key is denied",
    "DisabledException": "the KMS key is disabled",
    "KMSInvalidStateException": "the KMS key is not usable in its state (pending deletion or import?)",
    "NotFoundException": "the KMS key does not exist",
    "ThrottlingException": "KMS throttled the request, past the client's retries",
    "InvalidCiphertextException": "not a data key wrapped by this KMS key for this subject",
    "IncorrectKeyException": "not a data key wrapped by this KMS key",
}


@attrs.define
class KmsKeyWrapper:
    """The production [`KeyWrapper`][dynamo_es.privacy.KeyWrapper]: data keys under one AWS KMS key.

    ``new_key`` calls GenerateDataKey (AES_256) and ``unwrap`` calls Decrypt, both with the
    encryption context ``{"dynamo-es:subject": <subject>}``, so a wrapped key decrypts only for
    its own subject and CloudTrail names the subject of each call. The client retries throttling
    in botocore's standard mode; every KMS failure becomes a `KeyManagementError` with its ``code``.

    Attributes:
        key_id: the KMS key: id, ARN, alias name (``alias/...``) or alias ARN.
        region: the AWS region; botocore's default when None.
        endpoint_url: another KMS endpoint (a VPC endpoint, or a stand-in in tests).
        max_attempts: attempts per call, the first included.
    """

    key_id: str
    region: str | None = attrs.field(default=None, kw_only=True)
    endpoint_url: str | None = attrs.field(default=None, kw_only=True)
    max_attempts: int = attrs.field(default=5, kw_only=True)
    _client: Any = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        config = Config(retries={"mode": "standard", "total_max_attempts": self.max_attempts})
        session = botocore.session.get_session()
        self._client = session.create_client(
            "kms", region_name=self.region, endpoint_url=self.endpoint_url, config=config
        )

    def new_key(self, subject: str) -> tuple[bytes, bytes]:
        """A data key from GenerateDataKey: (the plaintext key, the key as KMS encrypted it)."""
        response = self._call(subject, "generate_data_key", KeySpec="AES_256")
        data_key, wrapped = response["Plaintext"], response["CiphertextBlob"]
        if len(data_key) != DATA_KEY_BYTES:
            raise KeyManagementError(f"KMS gave a {len(data_key)}-byte data key, not 32", subject=subject)
        return bytes(data_key), bytes(wrapped)

    def unwrap(self, subject: str, wrapped: bytes) -> bytes:
        """The data key in ``wrapped``, from Decrypt with the subject's encryption context."""
        return bytes(self._call(subject, "decrypt", CiphertextBlob=wrapped)["Plaintext"])

    def _call(self, subject: str, operation: str, **params: Any) -> Any:
        context = {CONTEXT_KEY: subject}
        try:
            return getattr(self._client, operation)(KeyId=self.key_id, EncryptionContext=context, **params)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            reason = _REASONS.get(code, f"KMS refused: {code}")
            raise KeyManagementError(f"{reason} ({self.key_id})", subject=subject, code=code) from error
        except NoCredentialsError as error:
            raise KeyManagementError("no AWS credentials for KMS", subject=subject) from error
        except BotoCoreError as error:
            raise KeyManagementError(f"cannot reach KMS: {error}", subject=subject) from error
