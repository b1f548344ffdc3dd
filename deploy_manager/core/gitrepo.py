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
		# git's own verdict ("fatal: ...") rather than the advice that may follow it.
		first = next((i for i, line in enumerate(message) if line.startswith(("fatal:", "error:"))), None)
		if first is None:
			raise GitError(message[-1] if message else f"git {' '.join(args)} exited {proc.returncode}")
		# With the paths git lists under it, indented ("would be overwritten by checkout:").
		listed = [line.strip() for line in message[first + 1 : first + 6] if line.startswith(("\t", " "))]
		raise GitError(" ".join([message[first], *listed]))
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


def fetch(path: str | Path) -> str:
	"""`git fetch` from origin; an app without a remote deploys from what it has."""
	if "origin" not in git(path, "remote").split():
		return "no remote named origin: deploying from local commits"
	git(path, "fetch", "--quiet", "origin", timeout=600)
	return "fetched origin"


def resolve(path: str | Path, ref: str | None) -> str:
	"""The commit a deploy moves to: `ref` (a local branch's upstream when it has one, else the branch,
	a tag, a commit, or a branch of origin), or without `ref` the current branch's upstream."""
	if not ref:
		try:
			return git(path, "rev-parse", "--verify", "--quiet", "@{upstream}^{commit}")
		except GitError:
			raise GitError("no ref given and the current branch tracks no upstream") from None
	candidates = [f"{ref}^{{commit}}", f"origin/{ref}^{{commit}}"]
	if _optional(str(path), "rev-parse", "--verify", "--quiet", f"refs/heads/{ref}"):
		candidates.insert(0, f"{ref}@{{upstream}}^{{commit}}")
	for candidate in candidates:
		if commit := _optional(str(path), "rev-parse", "--verify", "--quiet", candidate):
			return commit
	raise GitError(f"{ref} names no branch, tag or commit here")


def is_fixed(path: str | Path, ref: str | None) -> bool:
	"""Whether `ref` names a tag or a commit, which a fetch cannot move (a branch it can)."""
	if not ref:
		return False
	if _optional(str(path), "rev-parse", "--verify", "--quiet", f"refs/tags/{ref}"):
		return True
	commit = _optional(str(path), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
	return bool(commit) and commit.startswith(ref.lower())


def move_to(path: str | Path, ref: str | None, commit: str, force: bool = False) -> str:
	"""Check out what resolve() found: a branch stays a branch, fast-forwarded to `commit`; a tag or
	commit is checked out detached."""
	extra = ["--force"] if force else []
	is_branch = bool(ref) and bool(
		_optional(str(path), "rev-parse", "--verify", "--quiet", f"refs/heads/{ref}")
	)
	if ref and not is_branch:
		output = git(path, "checkout", *extra, "--detach", commit, timeout=600)
	else:
		if ref:
			git(path, "checkout", *extra, ref, timeout=600)
		output = git(path, "merge", "--ff-only", commit, timeout=600)
	# A branch ahead of its upstream stays where it is ("Already up to date"): never deploy that.
	head = git(path, "rev-parse", "HEAD")
	if head != commit:
		raise GitError(f"HEAD is {head[:10]}, not {commit[:10]}: the branch has commits its upstream lacks")
	return output


def has_path(path: str | Path, commit: str, inside: str) -> bool:
	"""Whether `commit` holds the file or folder `inside` (relative to the repository)."""
	return bool(_optional(str(path), "cat-file", "-t", f"{commit}:{inside}"))


def return_to(path: str | Path, branch: str, commit: str) -> str:
	"""Undo move_to(): back on `branch` (when there was one) at `commit`, keeping local changes."""
	if not branch:
		return git(path, "checkout", "--detach", commit, timeout=600)
	git(path, "checkout", branch, timeout=600)
	return git(path, "reset", "--keep", commit, timeout=600)
