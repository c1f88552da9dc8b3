"""The key store contract: one test suite that every KeyStore (crypto-shredding) must pass."""

from __future__ import annotations

import threading
import uuid

from ..exceptions import SubjectForgottenError
from ..ports.keys import KeyStore

__all__ = ["KeyStoreContract"]


class KeyStoreContract:
    """Behaviour every [`KeyStore`][dynamo_es.ports.keys.KeyStore] shares. Subclass it as ``TestYourKeyStore``."""

    def create_key_store(self) -> KeyStore:
        """Return the key store under test; each call may return the same one."""
        raise NotImplementedError

    def subject(self) -> str:
        """A subject no other test used."""
        return f"subject-{uuid.uuid4().hex}"

    def test_a_subject_without_a_key_has_none_and_is_not_forgotten(self) -> None:
        """An unknown subject has no key and no tombstone."""
        keys, subject = self.create_key_store(), self.subject()
        assert keys.wrapped_key(subject) is None
        assert keys.is_forgotten(subject) is False

    def test_an_added_key_reads_back(self) -> None:
        """The first key added is the subject's key, byte for byte."""
        keys, subject = self.create_key_store(), self.subject()
        assert keys.add_wrapped_key(subject, b"\x00wrapped\xff") == b"\x00wrapped\xff"
        assert keys.wrapped_key(subject) == b"\x00wrapped\xff"

    def test_a_second_key_does_not_replace_the_first(self) -> None:
        """Adding again returns the key the subject already has."""
        keys, subject = self.create_key_store(), self.subject()
        keys.add_wrapped_key(subject, b"first")
        assert keys.add_wrapped_key(subject, b"second") == b"first"
        assert keys.wrapped_key(subject) == b"first"

    def test_racing_adds_agree_on_one_key(self) -> None:
        """Eight threads adding keys at once all get the same one, which is stored."""
        keys, subject = self.create_key_store(), self.subject()
        results: list[bytes] = []
        start = threading.Barrier(8)

        def add(number: int) -> None:
            start.wait()
            results.append(keys.add_wrapped_key(subject, f"key-{number}".encode()))

        threads = [threading.Thread(target=add, args=(number,)) for number in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 8 and len(set(results)) == 1
        assert keys.wrapped_key(subject) == results[0]

    def test_forget_deletes_the_key_and_leaves_a_tombstone(self) -> None:
        """After forget the key is gone and the subject is forgotten."""
        keys, subject = self.create_key_store(), self.subject()
        keys.add_wrapped_key(subject, b"key")
        assert keys.forget(subject) is True
        assert keys.wrapped_key(subject) is None
        assert keys.is_forgotten(subject) is True

    def test_forget_is_idempotent(self) -> None:
        """A second forget says it was forgotten already and changes nothing."""
        keys, subject = self.create_key_store(), self.subject()
        keys.add_wrapped_key(subject, b"key")
        keys.forget(subject)
        assert keys.forget(subject) is False
        assert keys.is_forgotten(subject) is True and keys.wrapped_key(subject) is None

    def test_a_subject_never_seen_can_be_forgotten(self) -> None:
        """Forgetting a subject with no key leaves a tombstone all the same."""
        keys, subject = self.create_key_store(), self.subject()
        assert keys.forget(subject) is True
        assert keys.is_forgotten(subject) is True

    def test_a_forgotten_subject_gets_no_new_key(self) -> None:
        """Adding a key after forget raises SubjectForgottenError naming the subject."""
        keys, subject = self.create_key_store(), self.subject()
        keys.add_wrapped_key(subject, b"key")
        keys.forget(subject)
        try:
            keys.add_wrapped_key(subject, b"again")
        except SubjectForgottenError as error:
            assert error.subject == subject
        else:
            raise AssertionError("a forgotten subject was given a new key")
        assert keys.wrapped_key(subject) is None

    def test_subjects_are_isolated(self) -> None:
        """Forgetting one subject leaves another's key."""
        keys, kept, gone = self.create_key_store(), self.subject(), self.subject()
        keys.add_wrapped_key(kept, b"kept")
        keys.add_wrapped_key(gone, b"gone")
        keys.forget(gone)
        assert keys.wrapped_key(kept) == b"kept" and keys.is_forgotten(kept) is False
