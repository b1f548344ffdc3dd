"""The watchdog's entry in a crontab (python-crontab, as bench writes its own cron jobs): one entry per
bench, found by a comment naming that bench, so that several benches of one user never touch each
other's entries, nor anyone else's."""

import shlex
from dataclasses import dataclass

from crontab import CronTab

DEFAULT_EVERY = 5


def tag(bench: str) -> str:
	return f"deploy_manager watchdog: {bench}"


def command(bench: str, python: str) -> str:
	"""What cron runs: the bench's python from its sites folder, as `bench` itself would, appending to
	the bench's logs. cron runs it with /bin/sh: every path is quoted."""
	sites, log = f"{bench}/sites", f"{bench}/logs/deploy_manager_watchdog.log"
	run = [python, "-m", "frappe.utils.bench_helper", "frappe", "deploy-manager", "watchdog", "run"]
	return f"cd {shlex.quote(sites)} && {shlex.join(run)} >> {shlex.quote(log)} 2>&1"


@dataclass(frozen=True)
class Entry:
	schedule: str
	command: str
	enabled: bool
	comment: str

	def line(self) -> str:
		"""The line as the crontab holds it."""
		return f"{'' if self.enabled else '# '}{self.schedule} {self.command} # {self.comment}"


def entries(cron: CronTab, bench: str) -> list[Entry]:
	return [
		Entry(str(job.slices), job.command, job.is_enabled(), job.comment)
		for job in cron.find_comment(tag(bench))
	]


def enable(cron: CronTab, bench: str, python: str, every: int = DEFAULT_EVERY) -> Entry:
	"""Exactly one entry for `bench`, every `every` minutes, whatever entries of it were there (a
	disabled one, duplicates made by hand). Written at once."""
	if not 1 <= every <= 59:
		raise ValueError(f"every {every} minutes: give 1 to 59")
	# Made anew: entries are told apart by their text, and two equal ones made by hand cannot be.
	for job in list(cron.find_comment(tag(bench))):
		cron.remove(job)
	cron.new(command=command(bench, python), comment=tag(bench)).setall(f"*/{every} * * * *")
	cron.write()
	return entries(cron, bench)[0]


def disable(cron: CronTab, bench: str) -> int:
	"""Remove this bench's entries, and only those; how many there were."""
	found = list(cron.find_comment(tag(bench)))
	for job in found:
		cron.remove(job)
	cron.write()
	return len(found)
