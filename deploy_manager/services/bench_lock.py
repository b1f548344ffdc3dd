"""One deploy or rollback per bench at a time: both move the code every site of the bench runs."""

import contextlib
import json
import os

import frappe
from filelock import FileLock, Timeout
from frappe.utils import get_bench_path

from deploy_manager.services import closing


@contextlib.contextmanager
def one_change_at_a_time(what: str, site: str | None = None):
	"""One deploy or rollback per bench: both move the code every site runs. A second one is
	refused with the name of the first."""
	site = site or frappe.local.site
	sites = os.path.join(get_bench_path(), "sites")
	holder = os.path.join(sites, "deploy_manager_change.json")
	# A little patience: running_change() holds the lock for an instant when it looks.
	lock = FileLock(os.path.join(sites, "deploy_manager_change.lock"), timeout=2)
	try:
		lock.acquire()
	except Timeout:
		raise ValueError(
			f"{running_change() or 'another deploy or rollback'} is running on this bench"
		) from None

	def claim(what: str):
		"""Say what holds the lock (once the Deployment has a name, its name)."""
		with open(holder, "w") as f:
			json.dump({"what": what, "site": site, "pid": os.getpid()}, f)

	try:
		if why := closing.closing_elsewhere():
			raise ValueError(f"no change may start on this bench: {why}")
		claim(what)
		yield claim
	finally:
		with contextlib.suppress(FileNotFoundError):
			os.remove(holder)
		lock.release()


def running_change() -> str | None:
	"""What holds the bench's change lock now, if anything: "DEP-... on SITE (pid N)"."""
	sites = os.path.join(get_bench_path(), "sites")
	lock = FileLock(os.path.join(sites, "deploy_manager_change.lock"), timeout=0)
	try:
		lock.acquire()
		lock.release()
		return None
	except Timeout:
		try:
			with open(os.path.join(sites, "deploy_manager_change.json")) as f:
				held = json.load(f)
			return f"{held['what']} on {held['site']} (pid {held['pid']})"
		except (FileNotFoundError, ValueError, KeyError):
			return "another deploy or rollback"
