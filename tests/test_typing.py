"""What mypy sees of the public API: Repository is generic in its aggregate class."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

SNIPPET = textwrap.dedent(
    """
    from dynamo_es import AggregateRoot, InMemoryEventStore, Repository

    class BankAccount(AggregateRoot):
        balance: int = 0

    accounts = Repository(BankAccount, InMemoryEventStore())
    reveal_type(accounts)
    reveal_type(accounts.get("a"))
    reveal_type(accounts.get("a", version=3).balance)
    accounts.save(BankAccount("b"))
    accounts.save("not an aggregate")
    """
)


def test_repository_returns_the_aggregate_class_for_mypy(tmp_path: Path) -> None:
    """Mypy infers Repository[BankAccount], get() -> BankAccount, and rejects saving a str."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    stdout, _, _ = api.run(["--strict", "--no-incremental", "--no-error-summary", str(snippet)])
    assert 'Revealed type is "dynamo_es.app._sync.repository.Repository[snippet.BankAccount]"' in stdout, stdout
    assert 'Revealed type is "snippet.BankAccount"' in stdout
    assert 'Revealed type is "int"' in stdout
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and '"save" of "Repository" has incompatible type "str"' in errors[0], stdout
