"""Run bench commands in child processes from a test, the way bench itself runs them."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import frappe
from frappe.utils import get_bench_path, get_sites

# The bench's second site, as scripts/test-bench makes it.
SECOND_SITE = "dm-demo.localhost"


def spawn(site: str | None, *args: str) -> subprocess.Popen:
	"""`bench --site SITE ...` (or a bench command of no site): the bench's python, from the sites
	folder."""
	frappe.db.commit()  # a migrate in the child must not wait on this process's locks
	command = [sys.executable, "-m", "frappe.utils.bench_helper", "frappe"]
	return subprocess.Popen(
		[*command, *(("--site", site) if site else ()), *args],
		cwd=f"{get_bench_path()}/sites",
		stdout=subprocess.PIPE,
		stderr=subprocess.PIPE,
		text=True,
		start_new_session=True,
	)


def bench_cmd(site: str | None, *args: str, check: bool = False) -> subprocess.CompletedProcess:
	child = spawn(site, *args)
	stdout, stderr = child.communicate(timeout=600)
	fresh_snapshot()
	if check and child.returncode != 0:
		raise AssertionError(f"bench {' '.join(args)} exited {child.returncode}:\n{stdout}\n{stderr}")
	return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def list_app(app: str):
	"""Add `app` to sites/apps.txt as `bench get-app` does: every site's cached app module map is
	cleared, or installing the app on a site used before would sync none of its DocTypes."""
	apps_txt = os.path.join(get_bench_path(), "sites", "apps.txt")
	with open(apps_txt) as f:
		listed = f.read().split()
	if app not in listed:
		with open(apps_txt, "w") as f:
			f.write("".join(f"{name}\n" for name in [*listed, app]))
		bench_cmd("all", "clear-cache", check=True)


def second_site() -> str:
	"""Another site on this bench, made here if the bench has none (a bench-wide deploy or rollback
	moves every site's code)."""
	if SECOND_SITE not in get_sites():
		conf = frappe.get_conf()
		bench_cmd(
			None,
			"new-site",
			SECOND_SITE,
			"--db-root-username",
			conf.root_login or "root",
			"--db-root-password",
			conf.root_password or "",
			"--admin-password",
			"admin",
			"--mariadb-user-host-login-scope=%",
			check=True,
		)
	return SECOND_SITE


def stop_supervised():
	"""Stop the web server, workers and scheduler that supervisor runs for this bench (its Redis
	keeps running): a test that starts its own, or needs none, must not meet supervisor's. A deploy's
	restart starts them again."""
	if shutil.which("supervisorctl"):
		name = os.path.basename(get_bench_path())
		subprocess.run(["supervisorctl", "stop", f"{name}-web:", f"{name}-workers:"], capture_output=True)


def fresh_snapshot():
	"""See what a child process committed, as a new process would: a new transaction, no caches."""
	try:
		frappe.db.rollback()
	except Exception:
		# Migrate kills idle connections to its database; open a new one.
		frappe.db.connect()
	frappe.clear_cache()


def json_of(site: str, *args: str) -> dict:
	return json.loads(bench_cmd(site, *args).stdout)


def free_port() -> int:
	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def serve(site: str, port: int) -> subprocess.Popen:
	"""Frappe's own web server for the site on loopback; returns once it answers."""
	server = spawn(site, "serve", "--port", str(port), "--noreload")
	for _ in range(300):
		try:
			with socket.create_connection(("127.0.0.1", port), timeout=0.2):
				return server
		except OSError:
			if server.poll() is not None:
				raise AssertionError(f"bench serve exited:\n{server.communicate()[1]}")
			time.sleep(0.1)
	stop(server)
	raise AssertionError("bench serve did not listen within 30s")


def stop(process: subprocess.Popen):
	"""End a spawned bench process and its children (a worker's work horses, say)."""
	if process.poll() is None:
		os.killpg(process.pid, signal.SIGKILL)
	process.communicate()


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.5):
	"""Poll until `condition()` is truthy, on a fresh snapshot each time; return its value."""
	deadline = time.monotonic() + timeout
	while True:
		fresh_snapshot()
		value = condition()
		if value:
			return value
		if time.monotonic() > deadline:
			raise AssertionError(f"{what}: not within {timeout:g}s")
		time.sleep(interval)


@contextmanager
def webhook_receiver():
	"""A loopback HTTP server that keeps the JSON of every POST it gets, in a list it yields with
	its URL."""
	received = []

	class Handler(BaseHTTPRequestHandler):
		def do_POST(self):
			received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
			self.send_response(200)
			self.send_header("Content-Length", "2")
			self.end_headers()
			self.wfile.write(b"ok")

		def log_message(self, *args):
			pass

	server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
	thread = threading.Thread(target=server.serve_forever, daemon=True)
	thread.start()
	try:
		yield f"http://127.0.0.1:{server.server_address[1]}/hooks/deploys", received
	finally:
		server.shutdown()
		server.server_close()


def user_with(email: str, *roles: str) -> str:
	"""A System User with these roles (made once, committed, so child processes see it too)."""
	if not frappe.db.exists("User", email):
		user = frappe.get_doc(
			{"doctype": "User", "email": email, "first_name": "Test", "send_welcome_email": 0}
		)
		user.insert(ignore_permissions=True)
		user.add_roles(*roles)
	frappe.db.commit()
	return email


def api_key_of(user: str, password: str | None = None) -> tuple[str, str]:
	"""(API key, a new API secret) of `user` (and a new password), committed for the web server."""
	doc = frappe.get_doc("User", user)
	doc.api_key = doc.api_key or frappe.generate_hash(length=15)
	secret = frappe.generate_hash(length=15)
	doc.api_secret = secret
	if password:
		doc.new_password = password
	doc.save(ignore_permissions=True)
	frappe.db.commit()
	return doc.api_key, secret
