"""The guide's "Can't rollback without backup": a recent backup of the database exists.

The facts come gathered in `Target.extra["backups"]`: `folder` (the site's backup folder, which may
not exist), `newest_record` (when the newest Verified Backup Record was taken, or None), `missing`
(recent Backup Records whose files have vanished), `max_age_hours` (default 24), `now` (the site's
now), `time_zone` (the site's) and `dated_ahead` (Verified records dated ahead of now, left out of
`newest_record`). A gathering that failed comes as the exception itself.

Frappe keeps naive datetimes in the site's time zone, which may be hours from the server's: a
file's mtime is read in the site's zone too (core/clock.py), never in the machine's.
"""

import os
from datetime import datetime

from deploy_manager.core.checks import FAIL, INSIDE, PASS, CheckResult, Target, gathered, register, some
from deploy_manager.core.clock import SiteClock

# Database dumps as frappe/utils/backups.py names them, plain, compressed or encrypted. Partial
# dumps (-partial-database) hold only some tables and do not count.
DUMP_SUFFIXES = ("-database.sql.gz", "-database.sql", "-database-enc.sql.gz")
MAX_AGE_HOURS = 24.0


@register(
	"Backups",
	"backups",
	"minor",
	looks=INSIDE,
	fails_when="no backup (Backup Record or file in the site's backup folder) younger than Settings' maximum "
	f"age ({MAX_AGE_HOURS:g} h)",
)
def backups(target: Target) -> CheckResult:
	facts = gathered(target, "backups", "the backups", plural=True)
	if isinstance(facts, CheckResult):
		return facts
	folder, max_age = facts["folder"], facts.get("max_age_hours") or MAX_AGE_HOURS
	candidates = [newest_dump(folder, SiteClock(facts["time_zone"]))]
	if facts["newest_record"]:
		candidates.append((facts["newest_record"], "Backup Record"))
	found = [c for c in candidates if c]
	if not found:
		return CheckResult(
			FAIL, f"no backup found in {folder} nor any Backup Record", threshold=f"{max_age:g} h"
		)
	taken, what = max(found)
	age = max(0.0, (facts["now"] - taken).total_seconds() / 3600)
	message = f"newest backup {_age(age)} old ({what}, {taken:%Y-%m-%d %H:%M})"
	if ahead := facts.get("dated_ahead"):
		message += f"; {ahead} Backup Record(s) dated ahead of now not counted (the site's time zone moved?)"
	missing = facts.get("missing") or []
	if missing:
		return CheckResult(
			FAIL,
			f"{message}, but {some(missing)} lost their files",
			f"{len(missing)} missing",
			f"{max_age:g} h",
		)
	if age > max_age:
		return CheckResult(
			FAIL, f"{message}, over the {max_age:g} h allowed", f"{age:.1f} h", f"{max_age:g} h"
		)
	return CheckResult(PASS, message, f"{age:.1f} h", f"{max_age:g} h")


def newest_dump(folder: str, clock: SiteClock) -> tuple[datetime, str] | None:
	"""(modified, in the site's time; file name) of the newest database dump in the folder, None when
	there is none."""
	try:
		with os.scandir(folder) as entries:
			dumps = [
				(clock.from_timestamp(e.stat().st_mtime), e.name)
				for e in entries
				if e.name.endswith(DUMP_SUFFIXES) and "-partial-database" not in e.name and e.is_file()
			]
	except FileNotFoundError:
		return None
	return max(dumps, default=None)


def _age(hours: float) -> str:
	return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.0f} h"
