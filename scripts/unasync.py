"""Generate the sync code from the async source: ``_async/`` packages become ``_sync/`` ones.

The model is httpcore's ``scripts/unasync.py``: the async modules are the only ones written by
hand; this script rewrites their tokens (``async def`` -> ``def``, ``await x`` -> ``x``,
``AsyncRepository`` -> ``Repository``, ...) into the sibling ``_sync/`` package. What truly
differs between the two (a thread-safe stop or an asyncio one, closing an iterator, sleeping)
lives in the hand-written ``_backends`` modules, imported under the same names.

Usage:
    python scripts/unasync.py           # write the _sync/ modules
    python scripts/unasync.py --check   # exit 1 naming each stale or missing _sync/ module (CI)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[1] / "src" / "dynamo_es"
HEADER = "# Generated from {source} by scripts/unasync.py: edit that file and run `make unasync`.\n"

RULES: list[tuple[str, str]] = [
    (r"\basync def\b", "def"),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\b__aiter__\b", "__iter__"),
    (r"\b__anext__\b", "__next__"),
    (r"\bAwaitable, ", ""),
    (r", Awaitable\b(?!\[)", ""),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncIterable\b", "Iterable"),
    (r"\bAsyncGenerator\b", "Generator"),
    (r"\bStopAsyncIteration\b", "StopIteration"),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"^import asyncio$", "import time"),
    (r"\b_backends\.asyncio\b", "_backends.sync"),
    (r"\bdynamo_es\.aio\.", "dynamo_es."),
    (r"\bdynamo_es\.dynamodb\.aio\.", "dynamo_es.dynamodb."),
    (r"\._async\b", "._sync"),
    (r"\baclose_now\b", "close_now"),
    (r"\brun_steps_async\b", "run_steps"),
    (r"\bcheck_async_(\w+)", r"check_sync_\1"),
    (r"\basync_(\w+)", r"\1"),
    (r"\bAsync([A-Z]\w*)", r"\1"),
]
"""Applied in order to every line; whole words only."""


def unasync_line(line: str) -> str:
    """One line of the async source as the sync module has it."""
    for pattern, replacement in RULES:
        line = re.sub(pattern, replacement, line)
    return _drop_awaitable(line)


def _drop_awaitable(line: str) -> str:
    """``Awaitable[X]`` -> ``X`` (brackets matched), for return types of callables."""
    while (start := line.find("Awaitable[")) != -1:
        depth, index = 0, start + len("Awaitable")
        for index in range(start + len("Awaitable"), len(line)):
            depth += {"[": 1, "]": -1}.get(line[index], 0)
            if depth == 0:
                break
        line = line[:start] + line[start + len("Awaitable[") : index] + line[index + 1 :]
    return line


def unasync_text(text: str, source: str) -> str:
    """The sync module generated from async source ``text`` (``source`` names it in the header).

    Shorter names can let ruff join lines that the async source had to split, and change the
    order of imports: the result is formatted as the rest of the code is.
    """
    lines = [unasync_line(line) for line in text.splitlines(keepends=True)]
    return _formatted(HEADER.format(source=source) + "".join(lines), source)


def _formatted(text: str, source: str) -> str:
    name = source.replace("/_async/", "/_sync/")
    for command in (["check", "--fix", "--exit-zero", "--select", "I", "--quiet"], ["format"]):
        text = subprocess.run(  # noqa: S603  # ruff, this interpreter's
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", name, "-"],
            input=text, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    return text


def pairs(root: Path = SOURCE_ROOT) -> list[tuple[Path, Path]]:
    """Every async source module and the sync module generated from it."""
    found = []
    for folder in sorted(root.rglob("_async")):
        for source in sorted(folder.glob("*.py")):
            if source.name == "__init__.py":  # each package says what it is by hand
                continue
            found.append((source, folder.parent / "_sync" / source.name))
    return found


def expected(source: Path, root: Path = SOURCE_ROOT) -> str:
    """What the sync module generated from ``source`` holds."""
    return unasync_text(source.read_text(), str(source.relative_to(root.parent)))


def stale(root: Path = SOURCE_ROOT) -> list[Path]:
    """The generated modules that are missing or differ from what their source gives."""
    return [
        target for source, target in pairs(root) if not target.exists() or target.read_text() != expected(source, root)
    ]


def main() -> int:
    """Write the generated modules, or with ``--check`` name the stale ones; the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when a generated module is stale")
    args = parser.parse_args()
    if args.check:
        outdated = stale()
        for target in outdated:
            print(f"stale: {target.relative_to(SOURCE_ROOT.parent)} (run `make unasync`)", file=sys.stderr)
        return 1 if outdated else 0
    for source, target in pairs():
        target.parent.mkdir(exist_ok=True)
        target.write_text(expected(source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
