"""Text for operators at the shell: ages, short commits, plain tables; and the table of checks in
docs/verification.md."""

from deploy_manager.core.checks import Registered
from deploy_manager.core.verdict import SYMPTOMS

SHORT_COMMIT = 8
CHECKS_START, CHECKS_END = "<!-- checks:start -->", "<!-- checks:end -->"


def short_commit(commit: str) -> str:
	return commit[:SHORT_COMMIT] if commit else "-"


def describe_moves(apps) -> str:
	"""`shop 0123abcd..89efcdab (dirty), erpnext ...` for the apps that moved, then `app (dirty tree)`
	for those that did not move but have local changes; rows or dicts with `get`."""
	moved, dirty = [], []
	for a in apps:
		if a.get("changed"):
			span = f"{short_commit(a.get('from_commit'))}..{short_commit(a.get('to_commit'))}"
			moved.append(f"{a.get('app')} {span}" + (" (dirty)" if a.get("dirty") else ""))
		elif a.get("dirty"):
			dirty.append(f"{a.get('app')} (dirty tree)")
	if not moved and dirty:
		return "no change; " + ", ".join(dirty)
	return ", ".join(moved + dirty) or "no change"


def age(seconds: float) -> str:
	"""A coarse age an operator reads at a glance: 45s, 12m, 5h, 3d."""
	seconds = max(0, int(seconds))
	for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
		if seconds >= size:
			return f"{seconds // size}{unit}"
	return f"{seconds}s"


def table(headers: list[str], rows: list[list[str]]) -> str:
	widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
	lines = [headers, ["-" * w for w in widths], *rows]
	return "\n".join(
		"  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)).rstrip() for line in lines
	)


def checks_table(registered: list[Registered]) -> str:
	"""The registered checks as a markdown table, those whose failure costs most first."""
	worst_first = list(SYMPTOMS)
	rows = [
		f"| {r.name} | {r.fails_when} | {r.symptom.replace('_', ' ')} |"
		for r in sorted(registered, key=lambda r: worst_first.index(r.symptom))
	]
	return "\n".join(["| check | fails when | symptom |", "|---|---|---|", *rows])


def with_checks_table(page: str, registered: list[Registered]) -> str:
	"""`page` with the table between its checks markers written anew from `registered`."""
	head, start, rest = page.partition(CHECKS_START)
	_, end, tail = rest.partition(CHECKS_END)
	if not (start and end):
		raise ValueError(f"the page has no {CHECKS_START} ... {CHECKS_END} block")
	return f"{head}{CHECKS_START}\n{checks_table(registered)}\n{CHECKS_END}{tail}"
