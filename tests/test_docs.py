"""The docs say what the code does: every setting documented, the site builds strictly."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import attrs
import pytest

from dynamo_es import EventStoreSettings
from dynamo_es.testing import DynamoDBLocal

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented_with_its_env_var_and_default() -> None:
    """docs/configuration.md has a row per option with its variable and its real default."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", page, re.MULTILINE)}
    names = [field.name for field in attrs.fields(EventStoreSettings)]
    assert sorted(rows) == sorted(names)
    for field in attrs.fields(EventStoreSettings):
        assert f"`DYNAMO_ES_{field.name.upper()}`" in rows[field.name]
        assert f"`{field.default!r}`".replace("'", '"') in rows[field.name], field.name


def test_every_docs_page_is_in_the_navigation() -> None:
    """No page is left out of mkdocs.yml's nav."""
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert page.name in nav, page.name


@pytest.mark.skipif(shutil.which("git") is None, reason="mkdocs needs a checkout")
def test_site_builds_strictly(tmp_path: Path) -> None:
    """Mkdocs build --strict succeeds: no broken link, no missing API object, no include left as literal text."""
    completed = subprocess.run(  # noqa: S603 (our own docs build)
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "api" / "index.html").is_file()
    literal = re.compile(r"-{1,2}8\s*(&lt;|<)\s*-{1,2}|\{%\s*include|\binclude-markdown\b")
    unresolved = [
        f"{page.relative_to(tmp_path)}: {match.group(0)}"
        for page in tmp_path.rglob("*.html")
        for match in literal.finditer(page.read_text())
    ]
    assert unresolved == [], "a snippet marker or include rendered as text"
    lambda_page = re.sub(r"<[^>]+>", "", (tmp_path / "lambda" / "index.html").read_text())
    assert "def build_projection" in lambda_page and "def handler" in lambda_page


def test_docstrings_use_markdown_cross_references_not_rest_roles() -> None:
    """The API reference renders links: no :class:/:meth:/:func: role is left in a docstring."""
    roles = re.compile(r":(class|meth|func|attr|data|mod|exc):`")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "src").rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if roles.search(line)
    ]
    assert found == []


def permission_rows(section: str) -> dict[str, tuple[set[str], str]]:
    """Statement name -> (actions, resource cell), from one of the operations page's IAM tables."""
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`dynamodb:"):
            rows[cells[0]] = (set(re.findall(r"`(dynamodb:\w+)`", cells[1])), cells[2])
    return rows


def test_the_operations_page_lists_exactly_what_template_iam_grants() -> None:
    """Each IAM table row of docs/operations.md matches a statement of `template --iam`, and none is missing."""
    from dynamo_es.dynamodb.schema.templates import iam_statements

    page = (ROOT / "docs" / "operations.md").read_text()
    application, projection = page.split("The **projection** policy")
    settings = EventStoreSettings()
    names = {
        "events": "table/Events",
        "checkpoints": "table/EventCheckpoints",
        "snapshots": "table/EventSnapshots",
        "keys": "table/EventKeys",
        "archive": "table/EventArchive",
    }
    for section, role in ((application, "application"), (projection, "projection")):
        rows = permission_rows(section.split("## On-demand")[0])
        statements = iam_statements(settings, role)  # type: ignore[arg-type]
        assert sorted(rows) == sorted(s.sid for s in statements), role
        for statement in statements:
            actions, resource = rows[statement.sid]
            assert actions == set(statement.actions), (role, statement.sid)
            for table, suffix in statement.resources:
                expected = (
                    "ReadModelTableArns"
                    if table == "read_models"
                    else names[table] + ("/stream/*" if suffix == "stream" else suffix)
                )
                assert expected in resource, (role, statement.sid, expected)


def test_the_readme_quick_start_runs_again_on_kept_data(dynamodb_local: DynamoDBLocal) -> None:
    """The README's quick start, run twice against the same table (a persistent DynamoDB Local), passes both times."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\n\n```python\n(.*?)```", readme, re.DOTALL)
    assert block is not None
    settings = dynamodb_local.settings()
    env = {
        **os.environ,
        "DYNAMO_ES_ENDPOINT_URL": dynamodb_local.endpoint_url,
        "DYNAMO_ES_AWS_ACCESS_KEY_ID": str(settings.aws_access_key_id),
        "DYNAMO_ES_AWS_SECRET_ACCESS_KEY": str(settings.aws_secret_access_key),
        "DYNAMO_ES_EVENTS_TABLE_NAME": f"readme-{uuid.uuid4().hex[:8]}",
    }
    for _ in range(2):
        completed = subprocess.run(  # noqa: S603  # the README's own code, as a user runs it
            [sys.executable, "-c", block.group(1)], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert completed.returncode == 0, completed.stderr
        assert "1 Deposited Deposited(amount=100)" in completed.stdout


def listed_modules(page: str) -> set[str]:
    """The module paths a page's ``src/dynamo_es/`` tree names (two spaces of indent per level)."""
    block = page.split("```text\nsrc/dynamo_es/\n", 1)[1].split("```", 1)[0]
    found, folders = set(), []
    for line in block.splitlines():
        depth = (len(line) - len(line.lstrip())) // 2 - 1
        name = line.split()[0]
        folders = folders[:depth]
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
        else:
            found.add("/".join([*folders, name]))
    return found


def test_the_architecture_page_names_every_module() -> None:
    """docs/architecture.md has a line for every module of the package (and none that is gone)."""
    package = ROOT / "src" / "dynamo_es"
    actual = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "__init__.py" or path.parent == package
    }
    assert listed_modules((ROOT / "docs" / "architecture.md").read_text()) == actual
