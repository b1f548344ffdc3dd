import os
import shutil

import pytest
from conftest import run_git

from deploy_manager.core.gitrepo import GitError, git, read_state


def test_clean_repository_reports_branch_and_full_commit(repo):
	state = read_state(repo)
	assert state.is_git
	assert state.branch == "develop"
	assert state.commit == run_git(repo, "rev-parse", "HEAD")
	assert len(state.commit) == 40
	assert not state.dirty
	assert not state.error


def test_modified_tracked_file_is_dirty(repo):
	(repo / "module.py").write_text("VERSION = 3\n")
	assert read_state(repo).dirty


def test_untracked_file_alone_is_not_dirty(repo):
	(repo / "notes.txt").write_text("scratch\n")
	assert not read_state(repo).dirty


def test_detached_head_has_commit_but_no_branch(repo):
	first = run_git(repo, "rev-parse", "HEAD~1")
	run_git(repo, "checkout", "--quiet", "--detach", first)
	state = read_state(repo)
	assert state.commit == first
	assert state.branch == ""


def test_shallow_clone_reads_its_commit_and_says_it_is_shallow(repo, tmp_path):
	clone = tmp_path / "shallow"
	run_git(tmp_path, "clone", "--quiet", "--depth=1", f"file://{repo}", str(clone))
	state = read_state(clone)
	assert state.commit == run_git(repo, "rev-parse", "HEAD")
	assert state.branch == "develop"
	assert state.shallow
	assert not read_state(repo).shallow


def test_folder_without_git_records_no_commit_and_does_not_fail(tmp_path):
	app = tmp_path / "wheel_app"
	app.mkdir()
	(app / "__init__.py").write_text("__version__ = '1.0.0'\n")
	state = read_state(app)
	assert not state.is_git
	assert state.commit == ""
	assert not state.error


def test_app_inside_a_repository_without_its_own_git_is_not_read_from_the_parent(repo):
	nested = repo / "apps" / "inner"
	nested.mkdir(parents=True)
	assert not read_state(nested).is_git


def test_head_commit_removed_from_object_store_is_reported_not_raised(repo):
	head = run_git(repo, "rev-parse", "HEAD")
	obj = repo / ".git" / "objects" / head[:2] / head[2:]
	assert obj.exists()
	obj.chmod(0o644)
	obj.unlink()
	state = read_state(repo)
	assert state.is_git
	assert state.commit == head
	assert "missing" in state.error


def test_repository_without_any_commit_is_reported(tmp_path):
	empty = tmp_path / "empty"
	empty.mkdir()
	run_git(empty, "init", "--quiet")
	state = read_state(empty)
	assert state.is_git
	assert state.commit == ""
	assert "no commit" in state.error


def test_git_error_carries_gits_message(repo):
	try:
		git(repo, "rev-parse", "--verify", "no-such-ref")
	except GitError as e:
		assert "no-such-ref" in str(e) or "Needed a single revision" in str(e)
	else:
		raise AssertionError("git should have failed")


def test_corrupt_git_directory_is_reported(repo):
	shutil.rmtree(repo / ".git" / "objects")
	state = read_state(repo)
	assert state.is_git
	assert state.error


def test_git_environment_of_a_hook_does_not_redirect_reading(repo, tmp_path, monkeypatch):
	other = tmp_path / "other"
	other.mkdir()
	run_git(other, "init", "--quiet")
	(other / "f").write_text("x")
	run_git(other, "add", "f")
	run_git(other, "commit", "--quiet", "-m", "other")
	monkeypatch.setenv("GIT_DIR", str(other / ".git"))
	monkeypatch.setenv("GIT_WORK_TREE", str(other))
	assert read_state(repo).commit == run_git(repo, "--git-dir", str(repo / ".git"), "rev-parse", "HEAD")


def test_repository_owned_by_another_user_is_read(repo):
	# The bench belongs to `frappe` while CI runs as root: git must not refuse it.
	if os.geteuid() != 0:
		pytest.skip("needs root to hand the repository to another user")
	shutil.chown(repo, user="nobody")
	for path in repo.rglob("*"):
		shutil.chown(path, user="nobody")
	assert read_state(repo).commit
