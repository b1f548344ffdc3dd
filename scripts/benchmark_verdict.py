"""Benchmark: from the end of a real `bench update` to the verdict stored on the demo site, once with
the site active (someone logged in) and once dormant (no Activity Log: Frappe's scheduler then runs
its jobs once a day). Run by scripts/benchmark-verdict with the bench's python from its sites folder.

For each: the site made active or dormant, `bench update` run as the bench user (pull, backup,
requirements, migrate, build, restart by supervisor), then the site's newest Deployment polled every
second until a verification is stored for it and until its verdict is decided (not Inconclusive),
or until the limit. Prints figures; judges nothing.
"""

import os
import subprocess
import sys
import time

import frappe
import requests

SITE = "dm-demo.localhost"
LIMIT = float(os.environ.get("LIMIT", 600))


def on_site(fn, *args):
	frappe.init(site=SITE, sites_path=".")
	frappe.connect()
	try:
		return fn(*args)
	finally:
		frappe.destroy()


def make(mode: str) -> str | None:
	"""The site active or dormant; returns its newest Deployment, which the update's comes after."""
	if mode == "dormant":
		frappe.db.delete("Activity Log")
		frappe.db.commit()
	newest = frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")
	return newest[0] if newest else None


def log_in():
	"""As a user does, through nginx: Frappe records the login in the Activity Log."""
	requests.post(
		f"http://{SITE}/api/method/login", data={"usr": "Administrator", "pwd": "admin"}, timeout=30
	).raise_for_status()


def state(after: str | None) -> tuple[str, str, str, int] | None:
	newest = frappe.get_all(
		"Deployment", order_by="creation desc", limit=1, fields=["name", "status", "verdict"]
	)
	if not newest or newest[0].name == after:
		return None
	checks = frappe.db.count("Verification Check", {"deployment": newest[0].name})
	return newest[0].name, newest[0].status, newest[0].verdict or "", checks


def measure(mode: str, bench: str):
	after = on_site(make, mode)
	if mode == "active":
		log_in()
	started = time.monotonic()
	update = subprocess.run(["bench", "update"], cwd=bench, capture_output=True, text=True)
	ended = time.monotonic()
	if update.returncode:
		print(
			f"{mode}: bench update exited {update.returncode}\n{update.stdout[-2000:]}\n{update.stderr[-2000:]}"
		)
		return
	first = decided = None
	seen = None
	while time.monotonic() - ended < LIMIT and decided is None:
		seen = on_site(state, after)
		if seen and seen[3] and first is None:
			first = time.monotonic() - ended
		if (
			seen
			and seen[3]
			and seen[1] not in ("Awaiting Verification", "Verifying")
			and seen[2] != "Inconclusive"
		):
			decided = time.monotonic() - ended
		else:
			time.sleep(1)
	name, status, verdict, checks = seen or ("no deployment", "-", "-", 0)
	print(
		f"{mode}: bench update {ended - started:.0f} s, exit 0; {name}: "
		+ (
			f"first verification {first:.1f} s after it ended"
			if first is not None
			else f"no verification within {LIMIT:.0f} s"
		)
		+ (
			f", verdict decided at {decided:.1f} s: {verdict} ({status})"
			if decided is not None
			else f"; now {status}"
		)
		+ f"; {checks} verification(s) stored"
	)


if __name__ == "__main__":
	bench = os.path.dirname(os.getcwd())
	for mode in sys.argv[1:] or ["active", "dormant"]:
		measure(mode, bench)
