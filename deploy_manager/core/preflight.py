"""The guide's PREPARE checklist ("never deploy untested code") as a decision table.

Each item is found good or not by plain facts the Frappe-aware side gathers; whether a bad item
blocks the deploy or only warns depends on the environment (a rule per item, from Settings or the
defaults below). Items that are advice by nature (more than one app changes) only ever warn. A
block can be overridden, and only with a reason, which is recorded with the preflight.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

PASS, WARN, BLOCK = "pass", "warn", "block"

CODE_QUALITY = "Code quality"
BUILD = "Build"
ENVIRONMENT = "Environment"
SAFETY = "Safety"
ONE_CHANGE = "One change at a time"
FREEZE = "Freeze windows"
STAGING_FIRST = "Staging first"
CLEAN_TREES = "Clean working trees"
ITEMS = (CODE_QUALITY, BUILD, ENVIRONMENT, SAFETY, ONE_CHANGE, FREEZE, STAGING_FIRST, CLEAN_TREES)

PRODUCTION, STAGING = "Production", "Staging"
# Where a bad item blocks (Settings' "Blocks in" choices); elsewhere it warns.
BLOCKS_IN = {
	"Production": {PRODUCTION},
	"Production and Staging": {PRODUCTION, STAGING},
	"Every environment": None,  # all
	"Never": set(),
}
DEFAULT_RULES = {
	CODE_QUALITY: "Production",
	BUILD: "Production",
	ENVIRONMENT: "Every environment",
	SAFETY: "Production",
	ONE_CHANGE: "Every environment",
	FREEZE: "Every environment",  # a window already names the environments it freezes
	STAGING_FIRST: "Production",
	CLEAN_TREES: "Every environment",
}
# Evidence a pipeline posts for a commit; all three make code quality good.
QUALITY_EVIDENCE = ("Tests", "Lint", "Review")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Finding:
	item: str  # one of ITEMS
	name: str  # what was looked at, e.g. "Code quality: dm_probe"
	ok: bool
	message: str
	advice: bool = False  # only ever a warning
	status: str = ""  # set by judge()


@dataclass(frozen=True)
class Decision:
	findings: tuple[Finding, ...]
	override_reason: str = ""

	@property
	def blocks(self) -> tuple[Finding, ...]:
		return tuple(f for f in self.findings if f.status == BLOCK)

	@property
	def go(self) -> bool:
		return not self.blocks or bool(self.override_reason)

	def summary(self) -> str:
		warns = sum(1 for f in self.findings if f.status == WARN)
		if not self.blocks:
			return f"Clear to deploy: {len(self.findings)} items, {warns} warnings"
		blocked = "; ".join(f"{f.name}: {f.message}" for f in self.blocks)
		if self.override_reason:
			return f"Blocks overridden ({self.override_reason}): {blocked}"
		return f"Blocked: {blocked}"


def judge(
	findings: Iterable[Finding],
	environment: str,
	rules: dict[str, str] | None = None,
	override_reason: str = "",
) -> Decision:
	"""Each finding's status under the rules for `environment`; `rules` (item -> a BLOCKS_IN key)
	override DEFAULT_RULES item by item."""
	rules = {**DEFAULT_RULES, **(rules or {})}
	judged = []
	for finding in findings:
		where = BLOCKS_IN[rules[finding.item]]
		blocks = not finding.advice and (where is None or environment in where)
		status = PASS if finding.ok else BLOCK if blocks else WARN
		judged.append(replace(finding, status=status))
	return Decision(tuple(judged), (override_reason or "").strip())


@dataclass(frozen=True)
class Window:
	"""A freeze window from Settings. Every part that is set must match: dates (inclusive), a
	weekday, a time of day (may wrap past midnight), environments (empty: all)."""

	label: str
	environments: frozenset[str] = frozenset()
	from_date: date | None = None
	to_date: date | None = None
	weekday: str = ""
	from_time: time | None = None
	to_time: time | None = None

	def covers(self, local: datetime, environment: str) -> bool:
		if self.environments and environment not in self.environments:
			return False
		if self.from_date and local.date() < self.from_date:
			return False
		if self.to_date and local.date() > self.to_date:
			return False
		if self.weekday and WEEKDAYS[local.weekday()] != self.weekday:
			return False
		return _within(local.time(), self.from_time, self.to_time)


def clock(text: str | None) -> time | None:
	"""A time of day written HH:MM (Settings keep it as text: Frappe fills every new Time field
	with the time now, which would make an "empty" one a window of milliseconds)."""
	text = (text or "").strip()
	if not text:
		return None
	try:
		hours, minutes = text.split(":")
		return time(int(hours), int(minutes))
	except ValueError:
		raise ValueError(f"{text!r} is not a time of day written HH:MM") from None


def _within(moment: time, start: time | None, end: time | None) -> bool:
	if start is None and end is None:
		return True
	start, end = start or time.min, end or time.max
	if start <= end:
		return start <= moment < end
	return moment >= start or moment < end  # e.g. 22:00 to 06:00


def freeze(
	now: datetime,
	time_zone: str,
	environment: str,
	friday_rule: str,
	windows: Iterable[Window] = (),
) -> Finding:
	"""Is `now` (aware) inside a freeze for `environment`, in the site's time zone? `friday_rule`
	is Settings' "No deploys on Friday": "Production", "All environments" or "Off"."""
	if now.tzinfo is None:
		raise ValueError("freeze() needs an aware datetime")
	local = now.astimezone(ZoneInfo(time_zone))
	reasons = []
	friday_applies = friday_rule == "All environments" or (
		friday_rule == PRODUCTION and environment == PRODUCTION
	)
	if friday_applies and local.weekday() == 4:
		reasons.append(f"it is Friday ({local:%Y-%m-%d %H:%M} {time_zone}): deploy early in the week")
	reasons += [f"freeze window {w.label}" for w in windows if w.covers(local, environment)]
	if reasons:
		return Finding(FREEZE, FREEZE, False, "; ".join(reasons))
	return Finding(FREEZE, FREEZE, True, f"no freeze at {local:%a %Y-%m-%d %H:%M} {time_zone}")


def code_quality(app: str, commit: str, evidence: dict[str, str]) -> Finding:
	"""`evidence`: kind -> result ("Passed"/"Failed") posted for this commit (the latest of each)."""
	name = f"{CODE_QUALITY}: {app} {commit[:10]}"
	failed = [kind for kind in QUALITY_EVIDENCE if evidence.get(kind) == "Failed"]
	missing = [kind for kind in QUALITY_EVIDENCE if kind not in evidence]
	if failed:
		return Finding(CODE_QUALITY, name, False, f"{', '.join(failed)} failed for this commit")
	if missing:
		return Finding(
			CODE_QUALITY, name, False, f"no evidence of {', '.join(missing).lower()} for this commit"
		)
	return Finding(CODE_QUALITY, name, True, "tests, lint and review passed")


def build(app: str, commit: str, evidence: dict[str, str], has_assets: bool) -> Finding:
	name = f"{BUILD}: {app} {commit[:10]}"
	if evidence.get("Build") == "Failed":
		return Finding(BUILD, name, False, "its build failed")
	if evidence.get("Build") == "Passed":
		return Finding(BUILD, name, True, "its build passed")
	if not has_assets:
		return Finding(BUILD, name, True, "no assets to build at this commit")
	return Finding(BUILD, name, False, "no evidence that its assets build (the deploy builds them)")


def environment_keys(missing_keys: list[str], secrets: dict[str, bool]) -> Finding:
	"""`secrets`: what must be there -> whether it is (encryption_key, backup_encryption_key...)."""
	problems = [f"{key} missing from site config" for key in missing_keys]
	problems += [f"{key} not set" for key, present in secrets.items() if not present]
	if problems:
		return Finding(ENVIRONMENT, ENVIRONMENT, False, "; ".join(problems))
	return Finding(ENVIRONMENT, ENVIRONMENT, True, "required config keys and secrets present")


def safety(backup: str | None, age_hours: float | None, max_hours: float, candidates: int) -> Finding:
	problems = []
	if backup is None:
		problems.append("no Verified backup")
	elif age_hours > max_hours:
		problems.append(f"the newest Verified backup {backup} is {age_hours:.1f}h old (max {max_hours:g}h)")
	if not candidates:
		problems.append("no restorable rollback candidate")
	if problems:
		return Finding(SAFETY, SAFETY, False, "; ".join(problems))
	return Finding(
		SAFETY, SAFETY, True, f"{backup} is {age_hours:.1f}h old; {candidates} rollback candidates"
	)


def one_change(running: list[str], changing_apps: list[str]) -> list[Finding]:
	found = []
	if running:
		found.append(Finding(ONE_CHANGE, ONE_CHANGE, False, f"{'; '.join(running)} in progress"))
	else:
		found.append(Finding(ONE_CHANGE, ONE_CHANGE, True, "no other deployment in progress"))
	if len(changing_apps) > 1:
		found.append(
			Finding(
				ONE_CHANGE,
				f"{ONE_CHANGE}: apps",
				False,
				f"{len(changing_apps)} apps change at once ({', '.join(changing_apps)})",
				advice=True,
			)
		)
	return found


def staging_first(environment: str, targets: dict[str, str], confirmed: dict[str, str]) -> Finding:
	"""`targets`: app -> commit to deploy; `confirmed`: app -> where (site or reason) that commit was
	Confirmed on Staging. Only Production needs it."""
	if environment != PRODUCTION:
		return Finding(STAGING_FIRST, STAGING_FIRST, True, f"not needed in {environment}")
	unconfirmed = [f"{app} {commit[:10]}" for app, commit in targets.items() if app not in confirmed]
	if unconfirmed:
		return Finding(
			STAGING_FIRST, STAGING_FIRST, False, f"not Confirmed on Staging: {', '.join(unconfirmed)}"
		)
	where = ", ".join(f"{app} on {confirmed[app]}" for app in targets)
	return Finding(STAGING_FIRST, STAGING_FIRST, True, f"Confirmed on Staging: {where or 'nothing changes'}")


def clean_trees(dirty_apps: list[str]) -> Finding:
	if dirty_apps:
		return Finding(CLEAN_TREES, CLEAN_TREES, False, f"uncommitted changes in {', '.join(dirty_apps)}")
	return Finding(CLEAN_TREES, CLEAN_TREES, True, "the apps that move have clean working trees")
