"""Benchmark of verification, run with the bench's python from its sites folder (see benchmark-verify).

1. The whole check suite against Frappe's System Health Report, both built on the same site in one
   run, each several times; prints the medians and their ratio (goal: at most 0.4).
2. From the end of `bench migrate` to the stored post-deploy Verification Check, with a worker
   running (goal: under 30 s).

The site is served as production serves it, by gunicorn (two workers) on a free loopback port, with a
worker for every queue, for the length of the run; Settings' site URL is put back afterwards. Each
timed build starts with Frappe's caches cleared (an administrator opening the report after a deploy);
warm figures, caches kept, are printed too.
"""

import os
import socket
import statistics
import subprocess
import sys
import time

import frappe

from deploy_manager.services import verification
from deploy_manager.tests.fixtures import bench_cmd, free_port, spawn, stop, wait_until

RUNS = 5


def timed(fn, cold: bool) -> float:
	if cold:
		frappe.clear_cache()
	started = time.perf_counter()
	fn()
	return time.perf_counter() - started


def health_report():
	frappe.get_doc("System Health Report")


def suite_against_health_report():
	for fn in (health_report, verification.run_suite):  # imports and connections for both
		fn()
	for cold in (True, False):
		report = [timed(health_report, cold) for _ in range(RUNS)]
		suite = [timed(verification.run_suite, cold) for _ in range(RUNS)]
		r, s = statistics.median(report), statistics.median(suite)
		label = "caches cleared" if cold else "caches warm"
		print(f"[{label}] System Health Report build: median {r:.3f} s ({_all(report)})")
		print(f"[{label}] Verification suite:         median {s:.3f} s ({_all(suite)})")
		print(f"[{label}] ratio suite / health report: {s / r:.2f} (goal <= 0.40)")


def _all(times: list[float]) -> str:
	return ", ".join(f"{t:.3f}" for t in times)


def gunicorn(port: int) -> subprocess.Popen:
	bench_env = os.path.dirname(sys.executable)
	server = subprocess.Popen(
		[
			f"{bench_env}/gunicorn",
			"-b",
			f"127.0.0.1:{port}",
			"-w",
			"2",
			"--preload",
			"frappe.app:application",
		],
		stdout=subprocess.DEVNULL,
		stderr=subprocess.DEVNULL,
		start_new_session=True,
	)
	for _ in range(300):
		try:
			with socket.create_connection(("127.0.0.1", port), timeout=0.2):
				return server
		except OSError:
			time.sleep(0.1)
	stop(server)
	raise SystemExit("gunicorn did not listen within 30s")


def migrate_to_stored_check(site: str):
	started = time.perf_counter()
	bench_cmd(site, "migrate", "--skip-search-index", check=True)
	ended = time.perf_counter()
	name = frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")[0]
	wait_until(
		lambda: frappe.db.exists("Verification Check", {"deployment": name, "phase": "Post-deploy"}),
		120,
		"the post-deploy check",
		interval=0.1,
	)
	stored = time.perf_counter()
	print(f"bench migrate took {ended - started:.1f} s ({name})")
	print(f"migrate end -> stored post-deploy check: {stored - ended:.1f} s (goal < 30 s)")


def main(site: str):
	frappe.init(site=site)
	frappe.connect()
	saved_url = frappe.db.get_single_value("Deploy Manager Settings", "site_url")
	port = free_port()
	processes = [gunicorn(port), spawn(site, "worker", "--queue", "short,default,long")]
	try:
		frappe.db.set_single_value("Deploy Manager Settings", "site_url", f"http://127.0.0.1:{port}")
		frappe.db.commit()
		suite_against_health_report()
		migrate_to_stored_check(site)
	finally:
		for process in processes:
			stop(process)
		frappe.db.set_single_value("Deploy Manager Settings", "site_url", saved_url)
		frappe.db.commit()
		frappe.destroy()


if __name__ == "__main__":
	main(sys.argv[1])
