"""What a deployment changed, and why an unfinished one failed. Plain values in, plain values out."""

import re
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class AppState:
	app: str
	version: str = ""
	branch: str = ""
	commit: str = ""
	dirty: bool = False
	error: str = ""


@dataclass(frozen=True)
class AppChange:
	app: str
	from_branch: str
	branch: str
	from_version: str
	from_commit: str
	to_version: str
	to_commit: str
	dirty: bool
	# git could not be read: an empty commit then means "unknown", not "moved".
	commit_unknown: bool = False

	@property
	def changed(self) -> bool:
		# The commit decides when git was read: a version read from a process that imported the app
		# before a checkout is stale, and a same-commit version difference would be a false move.
		if self.commit_unknown or not (self.from_commit or self.to_commit):
			return self.from_version != self.to_version
		return self.from_commit != self.to_commit

	def as_dict(self) -> dict:
		fields = asdict(self)
		del fields["commit_unknown"]
		return {**fields, "changed": self.changed}


def compare(before: list[AppState], after: list[AppState]) -> list[AppChange]:
	"""Pair the states of each app before and after; an app installed or removed in between changes."""
	old = {s.app: s for s in before}
	new = {s.app: s for s in after}
	changes = []
	for app in list(old) + [a for a in new if a not in old]:
		b, a = old.get(app, AppState(app)), new.get(app, AppState(app))
		changes.append(
			AppChange(
				app=app,
				from_branch=b.branch,
				branch=a.branch,
				from_version=b.version,
				from_commit=b.commit,
				to_version=a.version,
				to_commit=a.commit,
				dirty=a.dirty or b.dirty,
				commit_unknown=bool(a.error and not a.commit),
			)
		)
	return changes


def patch_module_path(patch: str) -> str | None:
	"""`app.patches.v1.fix` -> `app/patches/v1/fix.py`; None for inline `execute:` patches."""
	if patch.startswith("execute:"):
		return None
	module = patch.split(maxsplit=1)[0]
	return module.replace(".", "/") + ".py"


def find_failing_patch(traceback: str, pending_patches: list[str]) -> str | None:
	"""The pending patch whose module appears in the traceback of a dead migrate, if any."""
	if not traceback:
		return None
	frames = re.findall(r'File "([^"]+)"', traceback)
	for patch in pending_patches:
		path = patch_module_path(patch)
		if path and any(f.endswith("/" + path) for f in frames):
			return patch
	return None


def failure_reason(traceback: str, pending_patches: list[str], left_note: bool) -> str:
	"""One line an administrator can act on, saying only what can be known.

	`left_note`: the migrate process reached its exit handler (it raised or exited); without a
	note it was killed or crashed.
	"""
	patch = find_failing_patch(traceback, pending_patches)
	last_line = traceback.strip().splitlines()[-1] if traceback.strip() else ""
	if patch:
		return f"Patch {patch} failed: {last_line}"
	if last_line:
		return f"Migrate failed: {last_line}"
	ending = "exited before finishing" if left_note else "was killed or crashed"
	if pending_patches:
		return f"The migrate process {ending}; first pending patch: {pending_patches[0]}"
	return f"The migrate process {ending}"
