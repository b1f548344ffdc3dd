"""A throwaway Frappe app, dm_probe, that bench tests install on the test site and move between
commits they make themselves, so that real `bench migrate` runs have something to record."""

import contextlib
import shutil
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import frappe
from frappe.utils import get_bench_path

from deploy_manager.core.gitrepo import git
from deploy_manager.tests.bench import bench_cmd, list_app

NAME = "dm_probe"
FILES = {
	# Migrates compile the patches: bytecode committed by `git add --all` would block checkouts.
	".gitignore": "__pycache__/\n",
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
		with contextlib.suppress(ValueError):
			sys.path.remove(str(self.path))
		shutil.rmtree(self.path, ignore_errors=True)

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
