"""Read the state of an app's git repository: branch, commit, dirty working tree.

Plain subprocess calls to git, never a shell. Every failure becomes a value on the returned
state, because recording a deployment must never fail on one odd repository.
"""

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT = 15
# Set by git hooks (push-to-deploy): they would make `-C path` read another repository.
REPOSITORY_ENV = (
	"GIT_DIR",
	"GIT_WORK_TREE",
	"GIT_INDEX_FILE",
	"GIT_OBJECT_DIRECTORY",
	"GIT_COMMON_DIR",
	"GIT_NAMESPACE",
)


class GitError(Exception):
	pass


@dataclass(frozen=True)
class RepoState:
	path: str
	is_git: bool = False
	branch: str = ""
	commit: str = ""
	dirty: bool = False
	shallow: bool = False
	error: str = ""


def git(path: str | Path, *args: str, timeout: float = GIT_TIMEOUT) -> str:
	"""Run git in `path` and return its stripped stdout; raise GitError with git's own message."""
	# A bench is often owned by another user than the one running CI or cron: without
	# safe.directory git refuses to read it. Trusting that one path only, with fsmonitor off,
	# keeps a repository's own config from running commands. No optional locks: never take
	# index.lock away from a `git pull` running at the same time.
	cmd = [
		"git",
		"--no-optional-locks",
		"-c",
		f"safe.directory={os.path.realpath(path)}",
		"-c",
		"core.fsmonitor=false",
		"-C",
		str(path),
		*args,
	]
	env = {k: v for k, v in os.environ.items() if k not in REPOSITORY_ENV}
	env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
	try:
		proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
	except FileNotFoundError:
		raise GitError("git is not installed")
	except subprocess.TimeoutExpired:
		raise GitError(f"git {' '.join(args)} took longer than {timeout}s")
	if proc.returncode != 0:
		message = (proc.stderr or proc.stdout).strip().splitlines()
		raise GitError(message[-1] if message else f"git {' '.join(args)} exited {proc.returncode}")
	return proc.stdout.strip()


def is_repository(path: str | Path) -> bool:
	# Only the app's own .git counts: a bench folder kept in git must not lend its history to an
	# app installed without one.
	return (Path(path) / ".git").exists()


def read_state(path: str | Path) -> RepoState:
	path = str(path)
	if not is_repository(path):
		return RepoState(path=path)
	try:
		commit = git(path, "rev-parse", "--verify", "--quiet", "HEAD")
	except GitError as e:
		return RepoState(path=path, is_git=True, error=f"no commit at HEAD: {e}")

	branch = _optional(path, "symbolic-ref", "--short", "--quiet", "HEAD")
	shallow = _optional(path, "rev-parse", "--is-shallow-repository") == "true"
	try:
		git(path, "cat-file", "-e", f"{commit}^{{commit}}")
	except GitError:
		return RepoState(
			path,
			True,
			branch,
			commit,
			shallow=shallow,
			error=f"HEAD commit {commit[:10]} is missing from the repository",
		)
	try:
		dirty = bool(git(path, "status", "--porcelain", "--untracked-files=no"))
	except GitError as e:
		return RepoState(path, True, branch, commit, shallow=shallow, error=f"cannot read working tree: {e}")
	return RepoState(path, True, branch, commit, dirty, shallow)


def _optional(path: str, *args: str) -> str:
	try:
		return git(path, *args)
	except GitError:
		return ""
