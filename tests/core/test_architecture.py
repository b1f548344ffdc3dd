"""The layers as docs/architecture.md draws them, kept so by reading the source: the core never
imports frappe, services import each other without cycles and only at module level, and a
Deployment's status changes only through its controller's lifecycle."""

import ast
import json
import re
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "deploy_manager"
SERVICES = APP / "services"
LIFECYCLE = APP / "deploy_manager" / "doctype" / "deployment" / "deployment.py"
# The statuses as the DocType declares them (the controller imports frappe: not importable here).
STATUSES = next(
	f["options"].split("\n")
	for f in json.loads(LIFECYCLE.with_suffix(".json").read_text())["fields"]
	if f["fieldname"] == "status"
)


def imported_modules(node: ast.AST) -> set[str]:
	found = set()
	for child in ast.walk(node):
		if isinstance(child, ast.Import):
			found |= {alias.name for alias in child.names}
		elif isinstance(child, ast.ImportFrom) and child.module:
			found.add(child.module)
			found |= {f"{child.module}.{alias.name}" for alias in child.names}
	return found


def service_imports(path: Path) -> tuple[set[str], set[str]]:
	"""(services imported at module level, services imported inside functions) by the module at path."""
	tree = ast.parse(path.read_text())
	inside = set()
	for node in ast.walk(tree):
		if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
			inside |= imported_modules(node)
	every = imported_modules(tree)

	def services(names):
		prefix = "deploy_manager.services."
		return {n.removeprefix(prefix).split(".")[0] for n in names if n.startswith(prefix)} & {
			p.stem for p in SERVICES.glob("*.py")
		}

	return services(every - inside), services(inside)


def test_core_never_imports_frappe():
	offenders = [
		str(path.relative_to(APP))
		for path in (APP / "core").rglob("*.py")
		if any(name.split(".")[0] == "frappe" for name in imported_modules(ast.parse(path.read_text())))
	]
	assert offenders == []


def test_services_import_each_other_at_module_level_without_cycles():
	graph, hidden = {}, {}
	for path in SERVICES.glob("*.py"):
		graph[path.stem], inside = service_imports(path)
		if inside:
			hidden[path.stem] = sorted(inside)
	assert hidden == {}, "services imported inside functions (to dodge a cycle?)"

	def cycle_from(node, trail):
		if node in trail:
			return [*trail[trail.index(node) :], node]
		for nxt in sorted(graph.get(node, ())):
			if found := cycle_from(nxt, [*trail, node]):
				return found
		return None

	cycles = [c for start in sorted(graph) if (c := cycle_from(start, []))]
	assert cycles == [], f"import cycle: {' -> '.join(cycles[0])}"


def test_deployment_status_changes_only_through_the_lifecycle():
	assignment = re.compile(r"\.status\s*=(?!=)(.*)")
	set_value = re.compile(r"""set_value\(\s*["']Deployment["'].*["']status["']""")
	offenders = []
	for path in APP.rglob("*.py"):
		if path == LIFECYCLE or "tests" in path.parts or path.name.startswith("test_"):
			continue
		for number, line in enumerate(path.read_text().splitlines(), 1):
			value = (m := assignment.search(line)) and m.group(1)
			if (
				value and ("lifecycle." in value or any(f'"{s}"' in value for s in STATUSES))
			) or set_value.search(line):
				offenders.append(f"{path.relative_to(APP)}:{number}: {line.strip()}")
	assert offenders == []
