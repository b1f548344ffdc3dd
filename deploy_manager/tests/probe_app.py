"""A throwaway Frappe app, dm_probe, that bench tests install on the test site and move between
commits they make themselves, so that real `bench migrate` runs have something to record."""

import json
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import frappe
from frappe.utils import get_bench_path

from deploy_manager.core.gitrepo import git

NAME = "dm_probe"
FILES = {
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

	@property
	def head(self) -> str:
		return git(self.path, "rev-parse", "HEAD")

	def ensure_installed(self, site: str):
		if not (self.path / ".git").exists():
			self._create()
		self._make_importable()
		apps_txt = self.bench / "sites" / "apps.txt"
		if NAME not in apps_txt.read_text().split():
			with apps_txt.open("a") as f:
				f.write(f"\n{NAME}\n")
		if NAME not in frappe.get_installed_apps():
			self.bench_cmd(site, "install-app", NAME, check=True)

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

	def remove_patch(self, patch: str):
		lines = (self.path / "dm_probe/patches.txt").read_text().splitlines()
		self.commit(
			f"Remove {patch}", {"dm_probe/patches.txt": "\n".join(l for l in lines if l != patch) + "\n"}
		)

	def bench_cmd(self, site: str, *args: str, check: bool = False) -> subprocess.CompletedProcess:
		"""Run `bench --site SITE ...` as bench does: the bench's python from the sites folder."""
		child = self.spawn(site, *args)
		stdout, stderr = child.communicate(timeout=600)
		proc = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
		_fresh_snapshot()
		if check and proc.returncode != 0:
			raise AssertionError(
				f"bench {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
			)
		return proc

	def spawn(self, site: str, *args: str) -> subprocess.Popen:
		frappe.db.commit()  # a migrate in the child must not wait on this process's locks
		return subprocess.Popen(
			[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "--site", site, *args],
			cwd=self.bench / "sites",
			stdout=subprocess.PIPE,
			stderr=subprocess.PIPE,
			text=True,
		)

	def _create(self):
		for rel, text in FILES.items():
			(self.path / rel).parent.mkdir(parents=True, exist_ok=True)
			(self.path / rel).write_text(text)
		git(self.path, "init", "--quiet", "--initial-branch=main")
		git(self.path, "add", "--all")
		git(self.path, *GIT_IDENTITY, "commit", "--quiet", "-m", "dm_probe: first commit")

	def _make_importable(self):
		# What an editable install amounts to: the app's folder on the bench env's path.
		pth = Path(sysconfig.get_paths()["purelib"]) / f"{NAME}.pth"
		if not pth.exists():
			pth.write_text(f"{self.path}\n")
		if str(self.path) not in sys.path:
			sys.path.append(str(self.path))


def _fresh_snapshot():
	"""End this connection's transaction so rows the child process committed become visible."""
	try:
		frappe.db.rollback()
	except Exception:
		# Migrate kills idle connections to its database; open a new one.
		frappe.db.connect()


def status_json(probe: ProbeApp, site: str, *args: str) -> dict:
	proc = probe.bench_cmd(site, "deploy-manager", "status", "--json", "--limit", "50", *args, check=True)
	return json.loads(proc.stdout)
