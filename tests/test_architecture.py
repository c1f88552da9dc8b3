"""The layout: a store-agnostic core, two adapters beside it, imports running adapters -> core."""

from __future__ import annotations

import ast
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "dynamo_es"
ADAPTERS = ("dynamo_es.memory", "dynamo_es.dynamodb")
OUTSIDE_CORE = (*ADAPTERS, "dynamo_es.privacy", "dynamo_es.testing", "dynamo_es.cli")
"""The privacy package is an adapter too: to the cryptography package and to AWS KMS."""
DRIVERS = ("pynamodb", "botocore", "boto3", "aiobotocore")
FRONT_DOORS = ("dynamo_es", "dynamo_es.aio")
"""Modules that only re-export names, core and adapters alike."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """Every module ``path`` imports (relative imports resolved), and whether at module level."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            found.append((target, id(node) in top_level or _in_type_checking(tree, node) or _optional(tree, node)))
    return found


def _optional(tree: ast.Module, target: ast.AST) -> bool:
    """Whether ``target`` is the body of a module-level ``try`` that catches ImportError (an optional extra)."""
    return any(
        isinstance(node, ast.Try)
        and target in node.body
        and any(handler.type is not None and "ImportError" in ast.unparse(handler.type) for handler in node.handlers)
        for node in tree.body
    )


def _in_type_checking(tree: ast.Module, target: ast.AST) -> bool:
    return any(
        isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) and target in ast.walk(node)
        for node in tree.body
    )


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def is_core(path: Path) -> bool:
    name = module_name(path)
    return name not in FRONT_DOORS and not name.startswith(OUTSIDE_CORE)


def starts(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


class TestLayout:
    @pytest.mark.parametrize("path", [p for p in modules() if is_core(p)], ids=module_name)
    def test_core_imports_no_driver_and_no_adapter(self, path: Path) -> None:
        """A core module imports neither PynamoDB nor botocore nor any adapter, test helper or the CLI."""
        bad = [name for name, _ in imports_of(path) if starts(name, DRIVERS) or starts(name, OUTSIDE_CORE)]
        assert bad == [], f"{module_name(path)} imports {bad}"

    def test_the_core_is_not_empty(self) -> None:
        """The core check runs on the modules it should (a renamed package would empty it)."""
        core = {module_name(p) for p in modules() if is_core(p)}
        assert {
            "dynamo_es.ports.store",
            "dynamo_es.app._sync.repository",
            "dynamo_es.projections._sync.projection",
        } <= core

    @pytest.mark.parametrize(("adapter", "other"), [ADAPTERS, ADAPTERS[::-1]])
    def test_adapters_do_not_import_each_other(self, adapter: str, other: str) -> None:
        """The memory adapter knows nothing of DynamoDB, and the DynamoDB adapter nothing of memory."""
        for path in modules():
            if starts(module_name(path), (adapter,)):
                bad = [name for name, _ in imports_of(path) if starts(name, (other,))]
                assert bad == [], f"{module_name(path)} imports {bad}"

    def test_memory_adapter_needs_no_driver(self) -> None:
        """The in-memory adapter runs without PynamoDB or botocore."""
        for path in modules():
            if starts(module_name(path), ("dynamo_es.memory",)):
                assert not [name for name, _ in imports_of(path) if starts(name, DRIVERS)]

    def test_no_import_hides_inside_a_function(self) -> None:
        """Every import is at module level: none is deferred to dodge a cycle."""
        deferred = [f"{module_name(path)}: {name}" for path in modules() for name, top in imports_of(path) if not top]
        assert deferred == []

    def test_packages_import_without_cycles(self) -> None:
        """Between the packages (core, memory, dynamodb, testing, cli) imports form no cycle."""
        graph: dict[str, set[str]] = {}
        for path in modules():
            source = package_of(module_name(path))
            for name, _ in imports_of(path):
                if name.startswith("dynamo_es") and source != "front door":
                    target = package_of(name)
                    if target not in (source, "front door"):
                        graph.setdefault(source, set()).add(target)
        assert not find_cycle(graph), graph


def package_of(name: str) -> str:
    if name in FRONT_DOORS:
        return "front door"
    for prefix in OUTSIDE_CORE:
        if starts(name, (prefix,)):
            return prefix
    return "core"


def find_cycle(graph: dict[str, set[str]]) -> bool:
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph.get(start, ())
        )

    return any(reaches(node, node, {node}) for node in graph)


def unasync_script() -> Any:
    spec = importlib.util.spec_from_file_location("unasync", SRC.parent / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestOneSource:
    def test_the_generated_sync_modules_are_up_to_date(self) -> None:
        """Every _sync/ module is what scripts/unasync.py makes of its _async/ source (a hand edit fails)."""
        script = unasync_script()
        assert script.pairs(), "no _async/ package found"
        assert script.stale() == []

    def test_a_hand_edit_of_a_generated_module_is_caught(self, tmp_path: Path) -> None:
        """The check sees a changed line in a copy of the tree."""
        script = unasync_script()
        tree = tmp_path / "dynamo_es"
        shutil.copytree(PACKAGE / "app", tree / "app")
        target = tree / "app" / "_sync" / "repository.py"
        target.write_text(target.read_text().replace("return aggregate", "return  aggregate", 1))
        assert script.stale(tree) == [target]

    def test_a_method_added_to_the_sync_memory_store_is_generated_into_the_async_one(self, tmp_path: Path) -> None:
        """The async in-memory store is a generated facade: a new sync method makes it stale, then appears awaited."""
        script = unasync_script()
        tree = tmp_path / "dynamo_es"
        shutil.copytree(PACKAGE / "memory", tree / "memory")
        store = tree / "memory" / "_store.py"
        method = (
            "    def forget_stream(self, aggregate_id: str, *, hard: bool = False) -> int:\n"
            '        """Forget a stream."""\n        return 0\n\n'
        )
        store.write_text(store.read_text().replace("    def stream_version(", method + "    def stream_version(", 1))
        assert script.stale(tree) == [tree / "memory" / "_aio_store.py"]
        text = script.facade_text(script.FACADES[0], tree)
        assert "async def forget_stream(self, aggregate_id: str, *, hard: bool = False) -> int:" in text
        assert "return self.sync.forget_stream(aggregate_id, hard=hard)" in text

    def test_the_rewrite_rules(self) -> None:
        """Tokens become their sync twins; an Awaitable return type becomes the plain one."""
        script = unasync_script()
        line = "    async def run(self, work: Callable[[AsyncUnitOfWork], Awaitable[list[R]]]) -> R:"
        assert script.unasync_line(line) == "    def run(self, work: Callable[[UnitOfWork], list[R]]) -> R:"
        assert script.unasync_line("        await asyncio.sleep(1)") == "        time.sleep(1)"
        assert script.unasync_line("    [`AsyncRepository`][dynamo_es.aio.AsyncRepository]") == (
            "    [`Repository`][dynamo_es.Repository]"
        )


LAYERS = (
    ("dynamo_es.exceptions", 0),
    ("dynamo_es.settings", 0),
    ("dynamo_es.observability", 0),
    ("dynamo_es.domain", 1),
    ("dynamo_es.core", 2),
    ("dynamo_es.ports", 3),
    ("dynamo_es.app", 4),
    ("dynamo_es.projections", 5),
    ("dynamo_es.memory", 6),
    ("dynamo_es.dynamodb", 6),
    ("dynamo_es.privacy", 6),
    ("dynamo_es.testing", 7),
    ("dynamo_es.cli", 8),
)
"""Each package and the layer it sits in: a module imports only from its own layer or the ones below."""


def layer_of(name: str) -> int:
    for prefix, layer in LAYERS:
        if starts(name, (prefix,)):
            return layer
    return len(LAYERS)  # the front doors re-export from anywhere


def packages() -> list[Path]:
    return sorted({path.parent for path in modules()})


class TestLayers:
    @pytest.mark.parametrize("path", modules(), ids=module_name)
    def test_imports_run_down_the_layers(self, path: Path) -> None:
        """Leaves (errors, settings, observability) < domain < core < ports < app < projections < stores < cli."""
        name = module_name(path)
        upward = [
            target
            for target, _ in imports_of(path)
            if target.startswith("dynamo_es") and layer_of(target) > layer_of(name)
        ]
        assert upward == [], f"{name} (layer {layer_of(name)}) imports {upward}"

    def test_every_package_is_in_a_layer(self) -> None:
        """A new package gets a layer (else the direction test would not see it)."""
        unplaced = [module_name(path / "__init__.py") for path in packages() if path.parent == PACKAGE]
        assert [name for name in unplaced if layer_of(name) == len(LAYERS)] == []

    @pytest.mark.parametrize("path", packages(), ids=lambda path: str(path.relative_to(SRC)))
    def test_no_package_has_more_than_15_modules(self, path: Path) -> None:
        """A package of more than 15 modules is split by role."""
        assert len(list(path.glob("*.py"))) <= 15

    @pytest.mark.parametrize("path", [p for p in modules() if starts(module_name(p), ADAPTERS)], ids=module_name)
    def test_adapters_import_only_public_modules_of_other_packages(self, path: Path) -> None:
        """An adapter imports ports, core and domain by their public modules, never another package's private one."""
        own = ".".join(module_name(path).split(".")[:2])
        private = [
            target
            for target, _ in imports_of(path)
            if target.startswith("dynamo_es")
            and not starts(target, (own,))
            and any(part.startswith("_") for part in target.split(".")[1:])
        ]
        assert private == []


SYNC_ADAPTERS = ("DynamoDBEventStore", "DynamoDBCheckpointStore", "DynamoDBSnapshotStore", "InMemoryEventStore")


ASYNC_ADAPTER_MODULES = [
    p
    for p in modules()
    if (p.name.startswith("_aio") or p.parent.name == "_async") and starts(module_name(p), ADAPTERS)
]


@pytest.mark.parametrize("path", ASYNC_ADAPTER_MODULES, ids=module_name)
def test_no_async_adapter_builds_a_sync_one(path: Path) -> None:
    """An async store builds no sync store inside it (whose client and table checks would block the loop)."""
    tree = ast.parse(path.read_text())
    built = [
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SYNC_ADAPTERS
    ]
    allowed = {"InMemoryEventStore"} if module_name(path) == "dynamo_es.memory._aio" else set()  # it wraps one
    assert set(built) <= allowed, f"{module_name(path)} builds {built}"
