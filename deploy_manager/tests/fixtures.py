"""What the bench tests share: bench commands run in child processes as bench runs them, users,
sites, the throwaway app dm_probe whose commits the tests make and deploy, and the test cases of a
site run as production runs it (web server, workers, scheduler)."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import frappe
import requests
from frappe.tests.utils import FrappeTestCase
from frappe.utils import get_bench_path, get_sites
from frappe.utils.background_jobs import get_queues
from frappe.utils.password import get_encryption_key, update_password

from deploy_manager.core.gitrepo import git
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.services import verification
from deploy_manager.services.closing import FLAGS

# A second site of the tests' own, made by them the first time: the demo site is for people.
SECOND_SITE = "dm-other.localhost"
# Seconds until an inconclusive verification runs again, in the tests.
RECHECK_AFTER = 5


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


# A program of another bench under the same supervisord (scripts/test-bench adds it): a deploy of
# this bench must leave it alone.
FOREIGN_PROGRAM = "other-bench-web:other-bench-frappe-web"


def supervised_pid(program: str) -> int:
	"""The pid supervisor gives `program` (group:name), 0 when it is not running."""
	found = subprocess.run(["supervisorctl", "pid", program], capture_output=True, text=True).stdout.strip()
	return int(found) if found.isdigit() else 0


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


def judged(deployment: str) -> bool:
	"""Verified, and not waiting for a re-check to decide."""
	status, verdict = frappe.db.get_value("Deployment", deployment, ["status", "verdict"])
	return status not in ("Awaiting Verification", "Verifying") and verdict != "Inconclusive"


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
	"""A user with exactly these roles, whatever an earlier test or run gave it (committed, so child
	processes and the web server see it too)."""
	if frappe.db.exists("User", email):
		user = frappe.get_doc("User", email)
	else:
		user = frappe.get_doc(
			{"doctype": "User", "email": email, "first_name": "Test", "send_welcome_email": 0}
		)
	user.set("roles", [{"role": role} for role in roles])
	user.save(ignore_permissions=True)
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


# dm_probe: a throwaway Frappe app that bench tests install on the test site and move between
# commits they make themselves, so that real `bench migrate` runs have something to record.
NAME = "dm_probe"
FILES = {
	# Migrates compile the patches: bytecode committed by `git add --all` would block checkouts.
	".gitignore": "__pycache__/\nnode_modules/\n",
	"dm_probe/__init__.py": '__version__ = "0.0.1"\n',
	"dm_probe/hooks.py": 'app_name = "dm_probe"\napp_title = "DM Probe"\napp_publisher = "deploy_manager tests"\n'
	'app_description = "Test app moved between commits by deploy_manager tests"\napp_license = "MIT"\n',
	"dm_probe/modules.txt": "DM Probe\n",
	"dm_probe/patches.txt": "[pre_model_sync]\n\n[post_model_sync]\n",
	"dm_probe/dm_probe/__init__.py": "",
	"dm_probe/patches/__init__.py": "",
}
GIT_IDENTITY = ("-c", "user.name=deploy_manager tests", "-c", "user.email=tests@deploy-manager.invalid")


class ProbeApp:
	def __init__(self):
		self.bench = Path(get_bench_path())
		self.path = self.bench / "apps" / NAME

	@classmethod
	def installed_for(cls, test_class) -> "ProbeApp":
		"""dm_probe installed on the test site until `test_class` is done."""
		probe = cls()
		probe.ensure_installed(frappe.local.site)
		test_class.addClassCleanup(probe.remove, frappe.local.site)
		return probe

	@property
	def head(self) -> str:
		return git(self.path, "rev-parse", "HEAD")

	def ensure_installed(self, site: str):
		if not (self.path / ".git").exists():
			self._create()
		elif git(self.path, "rev-parse", "--abbrev-ref", "HEAD") != "main":
			# Left detached by a run killed before its cleanup: tests start from the branch.
			git(self.path, "checkout", "--quiet", "--force", "main")
		self._make_importable()
		list_app(NAME)
		if NAME not in frappe.get_installed_apps():
			bench_cmd(site, "install-app", NAME, check=True)

	def commit(self, message: str, files: dict[str, str]) -> str:
		for rel, text in files.items():
			(self.path / rel).parent.mkdir(parents=True, exist_ok=True)
			(self.path / rel).write_text(text)
		git(self.path, "add", "--all")
		git(self.path, *GIT_IDENTITY, "commit", "--quiet", "-m", message)
		return self.head

	def add_patch(self, body: str) -> str:
		"""Commit a new post-model-sync patch whose `execute` runs `body`; return its dotted name."""
		name = f"p{time.time_ns()}"
		patches = (self.path / "dm_probe/patches.txt").read_text().rstrip(
			"\n"
		) + f"\ndm_probe.patches.{name}\n"
		self.commit(
			f"Add patch {name}",
			{
				"dm_probe/patches.txt": patches,
				f"dm_probe/patches/{name}.py": "import frappe\n\n\ndef execute():\n"
				+ textwrap.indent(body, "\t"),
			},
		)
		return f"dm_probe.patches.{name}"

	def patch_ahead(self, body: str) -> tuple[str, str, str]:
		"""(the commit now, a new commit whose patch runs `body`, that patch); the working tree stays at
		the commit now, as on a server before a deploy."""
		start = self.head
		patch = self.add_patch(body)
		target = self.head
		git(self.path, "checkout", "--quiet", "--detach", start)
		return start, target, patch

	def set_after_migrate(self, body: str | None):
		"""Commit an after_migrate hook running `body` (it runs after deploy_manager's), or remove it."""
		hooks = FILES["dm_probe/hooks.py"]
		if body:
			hooks += 'after_migrate = ["dm_probe.migrate_hook.after_migrate"]\n'
		hook = "import frappe\n\n\ndef after_migrate():\n" + textwrap.indent(body or "pass\n", "\t")
		self.commit("Set after_migrate hook", {"dm_probe/hooks.py": hooks, "dm_probe/migrate_hook.py": hook})

	def remove_patch(self, patch: str):
		lines = (self.path / "dm_probe/patches.txt").read_text().splitlines()
		self.commit(
			f"Remove {patch}", {"dm_probe/patches.txt": "\n".join(l for l in lines if l != patch) + "\n"}
		)

	def remove(self, site: str):
		"""Leave the bench as the tests found it: uninstalled, out of apps.txt and the env, deleted."""
		if NAME in frappe.get_installed_apps():
			bench_cmd(site, "uninstall-app", NAME, "--yes", "--no-backup", "--force", check=True)
		apps_txt = self.bench / "sites" / "apps.txt"
		apps_txt.write_text("".join(f"{app}\n" for app in apps_txt.read_text().split() if app != NAME))
		_pth().unlink(missing_ok=True)
		self._forget_assets()
		with contextlib.suppress(ValueError):
			sys.path.remove(str(self.path))
		shutil.rmtree(self.path, ignore_errors=True)

	def _forget_assets(self):
		"""A bundle a test built stays named in the bench's assets.json after the app is gone, which
		the Desk assets check then misses: the entries go with the app."""
		for name in ("assets.json", "assets-rtl.json"):
			path = self.bench / "sites" / "assets" / name
			if path.exists():
				assets = json.loads(path.read_text() or "{}")
				path.write_text(
					json.dumps({k: v for k, v in assets.items() if f"/{NAME}/" not in v}, indent=4)
				)
		if (link := self.bench / "sites" / "assets" / NAME).is_symlink():
			link.unlink()
		frappe.cache.delete_value("assets_json", shared=True)

	def _create(self):
		for rel, text in FILES.items():
			(self.path / rel).parent.mkdir(parents=True, exist_ok=True)
			(self.path / rel).write_text(text)
		git(self.path, "init", "--quiet", "--initial-branch=main")
		git(self.path, "add", "--all")
		git(self.path, *GIT_IDENTITY, "commit", "--quiet", "-m", "dm_probe: first commit")

	def _make_importable(self):
		# What an editable install amounts to: the app's folder on the bench env's path.
		if not _pth().exists():
			_pth().write_text(f"{self.path}\n")
		if str(self.path) not in sys.path:
			sys.path.append(str(self.path))


def _pth() -> Path:
	return Path(sysconfig.get_paths()["purelib"]) / f"{NAME}.pth"


class HealthySiteTestCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.site = frappe.local.site
		cls.processes = {}
		# A new site has no encryption_key until a password is first saved, when each process that
		# lacks one makes its own: made here, before any other process runs, it is the site's one.
		frappe.local.conf.update(frappe.get_site_config())
		get_encryption_key()
		# Class cleanups run even when setUpClass fails half-way: nothing is left running or changed.
		cls.addClassCleanup(cls.stop_all)
		saved = {
			field: frappe.db.get_single_value(SETTINGS, field)
			for field in ("site_url", "default_environment", "monitoring_window", "recheck_after")
		}
		cls.addClassCleanup(cls.configure, **saved)
		# A fresh deployment: errors older tests left behind are from before it, hence not new.
		bench_cmd(cls.site, "migrate", "--skip-search-index", check=True)
		bench_cmd(cls.site, "backup", check=True)
		password = frappe.generate_hash()
		update_password("Administrator", password)
		cls.addClassCleanup(update_password, "Administrator", "admin")
		# An inconclusive verdict is checked again in seconds, not Settings' minute.
		cls.configure(default_environment="Development", monitoring_window=15, recheck_after=RECHECK_AFTER)
		cls.outgoing_email()
		bench_cmd(cls.site, "enable-scheduler", check=True)
		cls.addClassCleanup(bench_cmd, cls.site, "disable-scheduler", check=True)
		stop_supervised()
		cls.port = free_port()
		cls.processes["web"] = serve(cls.site, cls.port)
		cls.configure(site_url=f"http://127.0.0.1:{cls.port}")
		# As its users do: a site nobody logs into is dormant, and Frappe runs its jobs once a day.
		requests.post(
			f"http://127.0.0.1:{cls.port}/api/method/login",
			data={"usr": "Administrator", "pwd": password},
			timeout=30,
		).raise_for_status()
		# Jobs queued by earlier test modules, which ran without workers, would keep these busy.
		for queue in get_queues():
			queue.empty()
		cls.start_workers()
		cls.processes["scheduler"] = spawn(cls.site, "schedule")
		cls.wait_until_healthy()

	@classmethod
	def stop_all(cls):
		for process in cls.processes.values():
			stop(process)

	@classmethod
	def outgoing_email(cls):
		"""Alerts are queued as Email Queue rows, which needs an outgoing account; muted, so nothing
		is sent (and no failed send becomes an error the checks would see)."""
		bench_cmd(cls.site, "set-config", "mute_emails", "1", "--parse", check=True)
		cls.addClassCleanup(bench_cmd, cls.site, "set-config", "mute_emails", "0", "--parse", check=True)
		if not frappe.db.exists("Email Account", "DM Tests"):
			frappe.get_doc(
				{
					"doctype": "Email Account",
					"email_account_name": "DM Tests",
					"email_id": "dm-tests@example.com",
					"enable_outgoing": 1,
					"default_outgoing": 1,
					"smtp_server": "127.0.0.1",
					"smtp_port": free_port(),
				}
			).insert(ignore_permissions=True)
		frappe.db.commit()

	@classmethod
	def configure(cls, **values):
		for field, value in values.items():
			frappe.db.set_single_value(SETTINGS, field, value)
		frappe.db.commit()

	@staticmethod
	def emails_for(deployment: str) -> list[str]:
		"""Who the alerts about `deployment` were queued to."""
		queued = frappe.get_all(
			"Email Queue",
			filters={"reference_doctype": "Deployment", "reference_name": deployment},
			pluck="name",
		)
		return frappe.get_all("Email Queue Recipient", filters={"parent": ("in", queued)}, pluck="recipient")

	@classmethod
	def set_webhook(cls, url: str):
		# Saved as Desk saves it: the URL is a Password field, kept encrypted.
		settings = frappe.get_single(SETTINGS)
		settings.webhook_url = url
		settings.save()
		frappe.db.commit()

	@classmethod
	def start_workers(cls):
		# One worker per queue, as `bench setup supervisor` runs them: a long job (the search index a
		# migrate queues) must not hold up the scheduler's default jobs.
		for name, queues in (("short worker", "short"), ("worker", "default"), ("long worker", "long")):
			if name not in cls.processes or cls.processes[name].poll() is not None:
				cls.processes[name] = spawn(cls.site, "worker", "--queue", queues)

	def stop_workers(self, *names: str):
		stop_supervised()  # a deploy's restart started supervisor's workers again
		for name in names:
			stop(self.processes[name])

	@classmethod
	def wait_until_healthy(cls):
		"""Until the scheduler has caught up on due jobs and the workers are registered: the site
		passes its own suite. The last failing checks are the error when it never does."""
		failing = []

		def confirmed():
			outcome = verification.run_suite()
			failing[:] = [f"{r.name}: {r.message}" for r in outcome.results if r.status != "pass"]
			return not failing

		try:
			wait_until(confirmed, 120, "the site to pass its own checks", interval=2)
		except AssertionError as e:
			raise AssertionError(f"{e}; still failing: {failing}") from None


class DeployTestCase(HealthySiteTestCase):
	"""The healthy test site with dm_probe, whose commits the tests deploy."""

	@classmethod
	def setUpClass(cls):
		# dm_probe first: the web server and workers started next must be able to import it.
		cls.probe = ProbeApp.installed_for(cls)
		super().setUpClass()

	def setUp(self):
		# A deploy is judged by the site's own checks: start each test from a site that passes them.
		self.wait_until_healthy()
		# A deploy restarts supervisor's web server and workers: later tests expect them stopped.
		self.addCleanup(stop_supervised)

	@property
	def bench_name(self) -> str:
		return os.path.basename(get_bench_path())

	def flags(self, site: str | None = None) -> dict:
		config = frappe.get_file_json(frappe.get_site_path("..", site or self.site, "site_config.json"))
		return {flag: config.get(flag) for flag in FLAGS}
