"""The folders are the architecture: evnet <- hal <- firmware <- central_broker, and no import cycles.

Inside firmware: the protocols two peers speak and Paxos import no other firmware part; the
engine, the EV, the monitor and the site import only those two; only the charge point process
(firmware.chargepoint) joins the engine and the site.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["evnet", "hal", "firmware", "central_broker"]
# What each package may import from this project (besides itself).
ALLOWED = {
    "evnet": set(),
    "hal": {"evnet"},
    "firmware": {"evnet", "hal"},
    "central_broker": {"evnet", "hal", "firmware"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Modules of this project that `path` imports, anywhere in it (lazy imports count too)."""
    found = set()
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in PACKAGES}


def modules() -> dict[str, set[str]]:
    graph = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            graph[module_name(path)] = project_imports(path)
    return {m: {i for i in imps if i in graph} for m, imps in graph.items()}


def test_each_package_imports_only_the_layers_below() -> None:
    wrong = [f"{m} imports {i}" for m, imps in modules().items() for i in imps
             if i.split(".")[0] != m.split(".")[0] and i.split(".")[0] not in ALLOWED[m.split(".")[0]]]
    assert not wrong, "\n".join(wrong)


# What each firmware part may import from the other firmware parts.
FIRMWARE = {
    "protocols": set(),
    "paxos": set(),
    "engine": {"protocols", "paxos"},
    "ev": {"protocols", "paxos"},
    "monitor": {"protocols", "paxos"},
    "site": {"protocols", "paxos"},
    "chargepoint": {"protocols", "paxos", "engine", "site"},
    "ocpp": {"protocols"},
}


def test_firmware_parts_import_only_what_the_layout_allows() -> None:
    parts = {p.name for p in (ROOT / "firmware").iterdir() if (p / "__init__.py").exists()}
    assert parts <= set(FIRMWARE), f"a firmware part the layer rules do not know: {parts - set(FIRMWARE)}"
    wrong = []
    for m, imps in modules().items():
        if not m.startswith("firmware."):
            continue
        mine = m.split(".")[1]
        for i in imps:
            theirs = i.split(".")[1] if i.startswith("firmware.") and i.count(".") >= 1 else None
            if theirs is not None and theirs != mine and theirs not in FIRMWARE[mine]:
                wrong.append(f"{m} imports {i}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = modules()
    # Importing a package runs its __init__, which imports its submodules: edges to a package are real.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for nxt in sorted(graph[m]):
            if nxt.startswith(m + "."):
                continue  # a package's __init__ re-exporting its own modules is not a cycle
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(cycles)


# Inside Paxos: the pure core imports no other room; the wire format only the core; the I/O the core
# and the wire; the simulator whatever it drives (DESIGN.md's layout: a face, core, wire, I/O, sim).
PAXOS = {"core": set(), "wire": {"core"}, "io": {"core", "wire"}, "sim": {"core", "wire", "io"}}


def test_paxos_rooms_import_only_the_rooms_below() -> None:
    rooms = {p.name for p in (ROOT / "firmware" / "paxos").iterdir() if (p / "__init__.py").exists()}
    assert rooms == set(PAXOS), f"Paxos rooms the layer rules do not know: {rooms ^ set(PAXOS)}"
    wrong = []
    for m, imps in modules().items():
        if not m.startswith("firmware.paxos.") or m.count(".") < 3:
            continue
        mine = m.split(".")[2]
        for i in imps:
            if i.startswith("firmware.paxos.") and i.count(".") >= 2:
                theirs = i.split(".")[2]
                if theirs != mine and theirs not in PAXOS[mine]:
                    wrong.append(f"{m} imports {i}")
            elif i == "firmware.paxos" and mine != "sim":
                wrong.append(f"{m} imports the face (firmware.paxos): import the room's module")
    assert not wrong, "\n".join(wrong)
