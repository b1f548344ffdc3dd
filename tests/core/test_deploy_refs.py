"""What `deploy --app APP@REF` resolves and checks out, on real repositories with a real remote."""

import pytest
from conftest import run_git

from deploy_manager.core import plan
from deploy_manager.core.gitrepo import GitError, fetch, is_fixed, move_to, read_state, resolve, return_to


@pytest.fixture
def clone(repo, tmp_path):
	"""A clone of `repo` tracking origin/develop; origin then gets a third commit, not yet fetched."""
	path = tmp_path / "server"
	run_git(tmp_path, "clone", "--quiet", f"file://{repo}", str(path))
	(repo / "module.py").write_text("VERSION = 3\n")
	run_git(repo, "commit", "--quiet", "-am", "commit 3")
	run_git(repo, "tag", "v3")
	return path


def test_a_tracked_branch_moves_to_what_was_fetched(repo, clone):
	newest = run_git(repo, "rev-parse", "HEAD")
	assert resolve(clone, None) != newest  # not fetched yet
	assert fetch(clone) == "fetched origin"
	assert resolve(clone, None) == newest
	assert resolve(clone, "develop") == newest  # a local branch goes to its upstream
	assert not is_fixed(clone, "develop")
	move_to(clone, None, newest)
	state = read_state(clone)
	assert (state.branch, state.commit) == ("develop", newest)


def test_tags_and_commits_are_fixed_and_checked_out_detached(repo, clone):
	fetch(clone)
	first = run_git(repo, "rev-parse", "HEAD~2")
	assert is_fixed(clone, "v3") and is_fixed(clone, first[:12])
	assert resolve(clone, first[:12]) == first
	move_to(clone, first[:12], first)
	state = read_state(clone)
	assert (state.branch, state.commit) == ("", first)


def test_return_to_puts_a_branch_back_where_it_was(repo, clone):
	before = read_state(clone)
	fetch(clone)
	move_to(clone, None, resolve(clone, None))
	return_to(clone, before.branch, before.commit)
	after = read_state(clone)
	assert (after.branch, after.commit) == (before.branch, before.commit)


def test_unknown_refs_and_missing_upstreams_are_named(repo):
	with pytest.raises(GitError, match="nope names no branch, tag or commit here"):
		resolve(repo, "nope")
	with pytest.raises(GitError, match="tracks no upstream"):
		resolve(repo, None)
	assert fetch(repo) == "no remote named origin: deploying from local commits"


def test_a_checkout_over_an_untracked_file_says_which_file(repo):
	first = run_git(repo, "rev-parse", "HEAD")
	(repo / "new.py").write_text("x = 1\n")
	run_git(repo, "add", "new.py")
	run_git(repo, "commit", "--quiet", "-m", "add new.py")
	target = run_git(repo, "rev-parse", "HEAD")
	run_git(repo, "checkout", "--quiet", "--detach", first)
	(repo / "new.py").write_text("left here by hand\n")
	with pytest.raises(GitError, match=r"would be overwritten by checkout: new.py"):
		move_to(repo, target, target)


def test_the_deploy_plan_follows_the_guide():
	moves = (plan.Move("shop", "a" * 40, "b" * 40), plan.Move("frappe", "c" * 40, "c" * 40))
	restart = plan.restart_command("supervisor", "erp-bench")
	bench = plan.deploy_plan(moves, {"shop": "v2"}, "erp.example.com", plan.BENCH, restart)
	titles = [step.title for step in bench.steps]
	assert titles[:3] == [
		"Preflight: the PREPARE checklist",
		"Maintenance mode on, scheduler paused",
		"Take a verified backup: the rollback point",
	]
	assert titles.index("Migrate") < titles.index("Build assets") < titles.index("Clear cache")
	text = bench.text()
	assert "git -C apps/shop checkout v2  # aaaaaaaaaa -> bbbbbbbbbb" in text
	assert "frappe" not in text.replace("bench", "")  # it does not move
	assert "supervisorctl restart erp-bench-web: erp-bench-workers:" in text
	assert bench.runnable
	for platform in (plan.DOCKER, plan.KUBERNETES):
		image = plan.deploy_plan(moves, {}, "erp.example.com", platform)
		assert not image.runnable
		assert "shop: aaaaaaaaaa -> bbbbbbbbbb" in image.text()


def test_a_branch_ahead_of_its_upstream_is_refused_not_deployed(repo, clone):
	(clone / "module.py").write_text("VERSION = 'local only'\n")
	run_git(clone, "commit", "--quiet", "-am", "not pushed")
	local = run_git(clone, "rev-parse", "HEAD")
	upstream = resolve(clone, None)
	with pytest.raises(GitError, match="the branch has commits its upstream lacks"):
		move_to(clone, None, upstream)
	assert read_state(clone).commit == local
