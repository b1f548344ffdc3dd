"""Text for operators at the shell: ages, short commits, plain tables."""

SHORT_COMMIT = 8


def short_commit(commit: str) -> str:
	return commit[:SHORT_COMMIT] if commit else "-"


def describe_moves(apps) -> str:
	"""`shop 0123abcd..89efcdab, erpnext ...` for the apps that changed; rows or dicts with `get`."""
	moved = [
		f"{a.get('app')} {short_commit(a.get('from_commit'))}..{short_commit(a.get('to_commit'))}"
		for a in apps
		if a.get("changed")
	]
	return ", ".join(moved) or "no change"


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
