import subprocess
from pathlib import Path

import pytest


def run_git(path: Path, *args: str) -> str:
	env = {
		"GIT_AUTHOR_NAME": "Test",
		"GIT_AUTHOR_EMAIL": "test@example.com",
		"GIT_COMMITTER_NAME": "Test",
		"GIT_COMMITTER_EMAIL": "test@example.com",
		"HOME": str(path),
		"PATH": "/usr/local/bin:/usr/bin:/bin",
	}
	return subprocess.run(
		["git", "-C", str(path), *args], check=True, capture_output=True, text=True, env=env
	).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
	"""A real repository on branch `develop` with two commits."""
	path = tmp_path / "app"
	path.mkdir()
	run_git(path, "init", "--quiet", "--initial-branch=develop")
	for n in (1, 2):
		(path / "module.py").write_text(f"VERSION = {n}\n")
		run_git(path, "add", "module.py")
		run_git(path, "commit", "--quiet", "-m", f"commit {n}")
	return path
