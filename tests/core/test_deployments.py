from deploy_manager.core.deployments import (
	AppState,
	compare,
	failure_reason,
	find_failing_patch,
	patch_module_path,
)
from deploy_manager.core.formatting import age, describe_moves, short_commit, table

TRACEBACK = """Traceback (most recent call last):
  File "/home/frappe/frappe-bench/apps/frappe/frappe/modules/patch_handler.py", line 184, in execute_patch
    _patch()
  File "/home/frappe/frappe-bench/apps/shop/shop/patches/v2/fill_prices.py", line 4, in execute
    raise ValueError("price missing")
ValueError: price missing
"""


def test_compare_marks_only_moved_apps_as_changed():
	before = [
		AppState("frappe", "15.55.1", "version-15", "a" * 40),
		AppState("shop", "1.0", "main", "b" * 40),
	]
	after = [AppState("frappe", "15.55.1", "version-15", "a" * 40), AppState("shop", "1.1", "main", "c" * 40)]
	changes = {c.app: c for c in compare(before, after)}
	assert not changes["frappe"].changed
	assert changes["shop"].changed
	assert (changes["shop"].from_commit, changes["shop"].to_commit) == ("b" * 40, "c" * 40)
	assert changes["shop"].as_dict()["changed"] is True


def test_version_change_without_git_counts_as_change():
	changes = compare([AppState("wheel_app", "1.0")], [AppState("wheel_app", "1.1")])
	assert changes[0].changed
	assert changes[0].from_commit == changes[0].to_commit == ""


def test_app_installed_during_migrate_is_a_change_from_nothing():
	changes = compare(
		[AppState("frappe", "15", "", "a" * 40)],
		[AppState("frappe", "15", "", "a" * 40), AppState("new", "0.1", "main", "d" * 40)],
	)
	new = changes[-1]
	assert new.app == "new" and new.changed and new.from_commit == "" and new.to_commit == "d" * 40


def test_same_commit_with_another_version_is_not_a_change():
	# A long-running deploy reads the version of the module it imported before checking out.
	changes = compare(
		[AppState("frappe", "15.50.0", "", "a" * 40)], [AppState("frappe", "15.55.1", "", "a" * 40)]
	)
	assert not changes[0].changed


def test_unknown_commits_fall_back_to_the_version():
	before = [AppState("shop", "1.0", "main", "b" * 40)]
	assert not compare(before, [AppState("shop", "1.0", error="git timed out")])[0].changed
	assert compare(before, [AppState("shop", "1.1", error="git timed out")])[0].changed
	assert not compare([AppState("wheel_app", "1.0")], [AppState("wheel_app", "1.0")])[0].changed


def test_app_removed_is_a_change_to_nothing():
	changes = compare([AppState("old", "0.1", "main", "d" * 40)], [])
	assert changes[0].changed and changes[0].to_commit == ""


def test_dirty_on_either_side_is_kept():
	changes = compare(
		[AppState("shop", "1", "main", "b" * 40, dirty=True)], [AppState("shop", "1", "main", "b" * 40)]
	)
	assert changes[0].dirty and not changes[0].changed


def test_patch_module_path():
	assert patch_module_path("shop.patches.v2.fill_prices") == "shop/patches/v2/fill_prices.py"
	assert patch_module_path("shop.patches.v2.fill_prices #2024-01-01") == "shop/patches/v2/fill_prices.py"
	assert patch_module_path("execute:frappe.db.commit()") is None


def test_failing_patch_is_found_from_its_traceback_frame():
	pending = ["frappe.patches.v15.other", "shop.patches.v2.fill_prices", "shop.patches.v2.later"]
	assert find_failing_patch(TRACEBACK, pending) == "shop.patches.v2.fill_prices"
	assert find_failing_patch(TRACEBACK, ["shop.patches.v2.later"]) is None
	assert find_failing_patch("", pending) is None


def test_failure_reason_names_patch_and_error():
	reason = failure_reason(TRACEBACK, ["shop.patches.v2.fill_prices"], left_note=True)
	assert reason == "Patch shop.patches.v2.fill_prices failed: ValueError: price missing"


def test_failure_reason_without_patch_quotes_the_error():
	reason = failure_reason("Traceback...\npymysql.err.OperationalError: (2013, 'Lost connection')", [], True)
	assert reason == "Migrate failed: pymysql.err.OperationalError: (2013, 'Lost connection')"


def test_failure_reason_of_killed_process_says_what_is_known():
	assert failure_reason("", ["shop.patches.v2.later"], False) == (
		"The migrate process was killed or crashed; first pending patch: shop.patches.v2.later"
	)
	assert failure_reason("", [], True) == "The migrate process exited before finishing"


def test_formatting():
	assert short_commit("0123456789abcdef") == "01234567"
	assert short_commit("") == "-"
	assert [age(s) for s in (5, 61, 7200, 90000, -3)] == ["5s", "1m", "2h", "1d", "0s"]
	text = table(["A", "Bee"], [["x", "y"], ["long", ""]])
	assert text.splitlines() == ["A     Bee", "----  ---", "x     y", "long"]


def test_unreadable_repository_is_not_a_move():
	before = [AppState("shop", "1.0", "main", "b" * 40)]
	after = [AppState("shop", "1.0", "", "", error="cannot read working tree")]
	change = compare(before, after)[0]
	assert not change.changed
	assert "commit_unknown" not in change.as_dict()
	assert compare(before, [AppState("shop", "1.1", "", "", error="git timed out")])[0].changed


def test_branch_switch_is_kept_on_both_sides():
	change = compare(
		[AppState("erpnext", "14.0", "version-14", "a" * 40)],
		[AppState("erpnext", "15.0", "version-15", "b" * 40)],
	)[0]
	assert (change.from_branch, change.branch) == ("version-14", "version-15")


def test_describe_moves_lists_only_changed_apps():
	apps = [
		{"app": "frappe", "from_commit": "a" * 40, "to_commit": "a" * 40, "changed": False},
		{"app": "shop", "from_commit": "", "to_commit": "c" * 40, "changed": True},
	]
	assert describe_moves(apps) == "shop -..cccccccc"
	assert describe_moves(apps[:1]) == "no change"


def _row(app, commit_from, commit_to, changed, dirty=False):
	return {
		"app": app,
		"from_commit": commit_from,
		"to_commit": commit_to,
		"changed": changed,
		"dirty": dirty,
	}


def test_describe_moves_marks_dirty_trees_apart_from_moves():
	moved_dirty = _row("shop", "b" * 40, "c" * 40, True, dirty=True)
	still_dirty = _row("deploy_manager", "d" * 40, "d" * 40, False, dirty=True)
	clean = _row("frappe", "a" * 40, "a" * 40, False)
	assert describe_moves([still_dirty, moved_dirty, clean]) == (
		"shop bbbbbbbb..cccccccc (dirty), deploy_manager (dirty tree)"
	)
	assert describe_moves([clean, still_dirty]) == "no change; deploy_manager (dirty tree)"
	assert describe_moves([clean]) == "no change"
