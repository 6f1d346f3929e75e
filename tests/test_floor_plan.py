"""The floor plan holds: the import contracts (pyproject.toml, import-linter) pass, they catch
an upward import even under TYPE_CHECKING or inside a function, nothing in kitd imports by
name at run time (which the contracts could not see), and no module keeps mutable state."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

from hil.rig import REPO, venv_script

KITD = REPO / "kitd"
# Containers and synchronisation objects that make a module-level name running state.
MUTABLE_CALLS = {
    "dict", "list", "set", "bytearray", "defaultdict", "OrderedDict", "deque", "Counter",
    "WeakKeyDictionary", "WeakValueDictionary", "WeakSet", "Lock", "RLock", "Event",
    "Condition", "Queue", "ThreadPoolExecutor",
}  # fmt: skip
MUTATING_METHODS = {
    "append", "extend", "insert", "update", "setdefault", "pop", "popitem", "clear",
    "remove", "add", "discard", "appendleft", "__setitem__", "__delitem__",
}  # fmt: skip


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv_script("lint-imports"), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_the_import_contracts_hold() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        # An upward import only a type checker would follow.
        (
            "capture/session.py",
            "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from kitd.kit import Kit\n",
        ),
        # One hidden inside a function, run only when called.
        ("drivers/facts.py", "def _later() -> None:\n    import kitd.services.gates\n"),
        # HTTP in the capture layer.
        ("capture/gate.py", "def _later() -> None:\n    import aiohttp\n"),
    ],
)
def test_an_upward_import_breaks_the_contracts(tmp_path: Path, module: str, upward: str) -> None:
    for name in ("kitd", "hil", "bench", "groundtruth"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    target = tmp_path / "kitd" / module
    target.write_text(target.read_text() + "\n\n" + upward)
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    importer = "kitd." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} ->" in result.stdout, result.stdout


def kitd_modules() -> list[Path]:
    return sorted(KITD.rglob("*.py"))


def test_kitd_imports_nothing_by_name_at_run_time() -> None:
    """importlib and __import__ hide an import from the contracts; kitd uses neither."""
    found = []
    for path in kitd_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Name) and node.id == "__import__":
                names = ["__import__"]
            if any(n == "importlib" or n.startswith("importlib.") or n == "__import__" for n in names):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, found


def _module_level_mutables(tree: ast.Module) -> dict[str, int]:
    """Module-level names bound to a mutable container or a lock (besides __all__)."""
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        literal = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
        call = (
            isinstance(value, ast.Call)
            and (getattr(value.func, "id", None) or getattr(value.func, "attr", None)) in MUTABLE_CALLS
        )
        for target in targets:
            if (
                isinstance(target, ast.Name)
                and target.id != "__all__"
                and (isinstance(value, literal) or call)
            ):
                found[target.id] = node.lineno
    return found


def state_problems(tree: ast.Module, where: str) -> list[str]:
    """What makes a module hold running state: a module-level lock, queue, cache or weak map;
    a function writing to a module-level container; a `global` statement."""
    problems = []
    tables = _module_level_mutables(tree)
    for node in tree.body:
        value = getattr(node, "value", None)
        name = getattr(getattr(node, "target", None), "id", None) or next(
            (t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)), None
        )
        if name in tables and isinstance(value, ast.Call):
            kind = ast.unparse(value.func)
            if kind not in ("dict", "list", "set"):
                problems.append(f"{where}:{node.lineno}: {name} is a module-level {kind}")
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for function in functions:
        for node in ast.walk(function):
            if isinstance(node, ast.Global):
                problems.append(f"{where}:{node.lineno}: global {', '.join(node.names)}")
            targets = []
            if isinstance(node, (ast.Assign, ast.Delete)):
                targets = node.targets
            elif isinstance(node, ast.AugAssign):
                targets = [node.target]
            written = [
                t.value.id
                for t in targets
                if isinstance(t, (ast.Subscript, ast.Attribute))
                and isinstance(t.value, ast.Name)
                and t.value.id in tables
            ]
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATING_METHODS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in tables
            ):
                written.append(node.func.value.id)
            problems += [f"{where}:{node.lineno}: writes the module-level {name}" for name in written]
    return problems


# The exceptions, and why: a PKCS#11 module's state is the process's (C_Initialize once,
# one login per token for all sessions, no locking of its own when python-pkcs11 starts it),
# so the registry of logins and the lock around the module's calls mirror state that exists
# per process whatever kitd does; two kits in one process share that token state anyway. And
# the process's environment, where OpenCV reads FFmpeg's options at each open: the lock around
# setting them for one open is as process-wide as the environment it guards.
PROCESS_WIDE_STATE = {
    "kitd/crypto/pkcs11_keys.py": ("_CALLS", "_logins"),
    "kitd/drivers/camera_sources.py": ("_FFMPEG_OPTIONS_LOCK",),
}


def _allowed(problem: str) -> bool:
    where = problem.split(":", 1)[0]
    return any(
        problem.endswith(f" {name}") or f": {name} is" in problem
        for name in PROCESS_WIDE_STATE.get(where, ())
    )


def test_no_module_level_mutable_state_in_kitd() -> None:
    """Tables of constants may be dicts, but no code writes to a module-level name, no module
    keeps a lock, queue or weak map of its own, and nothing says `global` (but for the
    process's own PKCS#11 state and environment, above)."""
    problems = []
    for path in kitd_modules():
        problems += state_problems(ast.parse(path.read_text()), str(path.relative_to(REPO)))
    assert not [p for p in problems if not _allowed(p)], "\n".join(problems)
    assert len([p for p in problems if _allowed(p)]) <= 5  # the exceptions do not grow unseen


def test_the_state_check_sees_a_registry_that_running_code_writes() -> None:
    """The check above is not blind: registries like the old preview overlays and feeds fail it."""
    old = (
        "OVERLAYS: list = []\n"
        "FEEDS = WeakKeyDictionary()\n"
        "def install(overlay):\n    OVERLAYS.append(overlay)\n"
        "def feed_for(slot):\n    FEEDS[slot] = 1\n"
        "def count():\n    global N\n"
    )
    problems = state_problems(ast.parse(old), "old.py")
    assert any("FEEDS is a module-level WeakKeyDictionary" in p for p in problems), problems
    assert any("writes the module-level OVERLAYS" in p for p in problems), problems
    assert any("writes the module-level FEEDS" in p for p in problems), problems
    assert any("global N" in p for p in problems), problems
