"""KmsKeyWrapper: data keys from AWS KMS's GenerateDataKey, unwrapped by Decrypt, failures as KeyManagementError.

KMS is played by moto's server mode, a KMS-protocol stand-in reached over real HTTP with
botocore's real signing, serialization, retries and error parsing: it stands for KMS's
GenerateDataKey and Decrypt with an encryption context. What moto does not do (throttling,
access denied, a disabled key) is answered by a FaultProxy in front of it, with KMS's own
error codes, as the real service answers them.
"""

from __future__ import annotations

from collections.abc import Iterator

import botocore.session
import pytest
from moto.server import ThreadedMotoServer
from tests.privacy.test_shredder import AGE, MARKER, Registered

from dynamo_es.exceptions import DynamoESError, KeyManagementError
from dynamo_es.privacy import CryptoShredder, InMemoryKeyStore, KmsKeyWrapper
from dynamo_es.testing import FaultProxy

SUBJECT = "customer-7"


@pytest.fixture(scope="module")
def kms_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def key_id(kms_endpoint: str, _credentials: None) -> str:
    client = botocore.session.get_session().create_client("kms", region_name="us-east-1", endpoint_url=kms_endpoint)
    key: str = client.create_key(Description="dynamo-es tests")["KeyMetadata"]["KeyId"]
    return key


def wrapper(endpoint: str, key_id: str, **options: int) -> KmsKeyWrapper:
    return KmsKeyWrapper(key_id, region="us-east-1", endpoint_url=endpoint, **options)


def test_a_new_key_unwraps_to_itself(kms_endpoint: str, key_id: str) -> None:
    """GenerateDataKey gives a 32-byte key and its wrapping; Decrypt of the wrapping gives the key back."""
    kms = wrapper(kms_endpoint, key_id)
    data_key, wrapped = kms.new_key(SUBJECT)
    assert len(data_key) == 32 and data_key not in wrapped
    assert kms.unwrap(SUBJECT, wrapped) == data_key


def test_a_wrapped_key_does_not_unwrap_for_another_subject(kms_endpoint: str, key_id: str) -> None:
    """The subject is the encryption context: another subject's Decrypt fails as InvalidCiphertextException."""
    kms = wrapper(kms_endpoint, key_id)
    _, wrapped = kms.new_key(SUBJECT)
    with pytest.raises(KeyManagementError, match="not a data key wrapped by this KMS key") as raised:
        kms.unwrap("someone-else", wrapped)
    assert raised.value.code == "InvalidCiphertextException" and raised.value.subject == "someone-else"


def test_the_shredder_seals_and_opens_with_kms_keys(kms_endpoint: str, key_id: str) -> None:
    """A shredder on KMS seals a field and opens it, from a second shredder's cold cache too."""
    keys = InMemoryKeyStore()
    sealed = CryptoShredder(keys, wrapper(kms_endpoint, key_id)).seal(Registered, _document())
    assert MARKER not in str(sealed)
    opened = CryptoShredder(keys, wrapper(kms_endpoint, key_id)).open(Registered, sealed)
    assert opened["email"] == MARKER


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("AccessDeniedException", "access to the KMS key is denied"),
        ("DisabledException", "the KMS key is disabled"),
        ("KMSInvalidStateException", "not usable in its state"),
        ("NotFoundException", "does not exist"),
    ],
)
def test_kms_refusals_are_key_management_errors(kms_endpoint: str, key_id: str, code: str, reason: str) -> None:
    """Access denied, a disabled key, a key pending deletion or a missing key: a DynamoESError with the code."""
    with FaultProxy(kms_endpoint) as proxy:
        kms = wrapper(proxy.endpoint_url, key_id)
        proxy.inject("GenerateDataKey", "error", code=code)
        with pytest.raises(KeyManagementError, match=reason) as raised:
            kms.new_key(SUBJECT)
    assert isinstance(raised.value, DynamoESError)
    assert raised.value.code == code and raised.value.subject == SUBJECT and raised.value.__cause__ is not None
    assert proxy.seen == [("GenerateDataKey", "error")]  # not retried


def test_throttling_is_retried_then_succeeds(kms_endpoint: str, key_id: str) -> None:
    """Two ThrottlingExceptions are retried by the client; the third attempt gives the key."""
    with FaultProxy(kms_endpoint) as proxy:
        kms = wrapper(proxy.endpoint_url, key_id)
        _, wrapped = kms.new_key(SUBJECT)
        proxy.inject("Decrypt", "error", code="ThrottlingException", times=2)
        assert len(kms.unwrap(SUBJECT, wrapped)) == 32
    assert [fault for operation, fault in proxy.seen if operation == "Decrypt"] == ["error", "error", "forwarded"]


def test_throttling_past_the_retries_is_a_key_management_error(kms_endpoint: str, key_id: str) -> None:
    """Throttling on every attempt raises KeyManagementError after max_attempts calls."""
    with FaultProxy(kms_endpoint) as proxy:
        kms = wrapper(proxy.endpoint_url, key_id, max_attempts=3)
        proxy.inject("GenerateDataKey", "error", code="ThrottlingException", times=10)
        with pytest.raises(KeyManagementError, match="throttled") as raised:
            kms.new_key(SUBJECT)
    assert raised.value.code == "ThrottlingException" and len(proxy.seen) == 3


def test_an_unreachable_kms_is_a_key_management_error(key_id: str) -> None:
    """No KMS listening raises KeyManagementError saying it cannot reach KMS."""
    kms = KmsKeyWrapper(key_id, region="us-east-1", endpoint_url="http://127.0.0.1:9", max_attempts=1)
    with pytest.raises(KeyManagementError, match="cannot reach KMS"):
        kms.new_key(SUBJECT)


def test_missing_credentials_are_a_key_management_error(
    kms_endpoint: str, key_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without AWS credentials the error says so."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(KeyManagementError, match="no AWS credentials"):
        wrapper(kms_endpoint, key_id).new_key(SUBJECT)


def _document() -> dict[str, object]:
    return {"customer_id": SUBJECT, "email": MARKER, "age": AGE, "plan": "free"}
