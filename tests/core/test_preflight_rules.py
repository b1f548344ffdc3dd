from datetime import date, datetime, time, timezone

import pytest

from deploy_manager.core import preflight as pf

UTC = timezone.utc
THURSDAY_LATE_UTC = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)  # a Thursday in UTC


def test_friday_blocks_production_in_the_sites_time_zone():
	# 23:30 on Thursday in UTC is already 05:00 on Friday in Kolkata.
	assert pf.freeze(THURSDAY_LATE_UTC, "UTC", "Production", "Production").ok
	finding = pf.freeze(THURSDAY_LATE_UTC, "Asia/Kolkata", "Production", "Production")
	assert not finding.ok
	assert "Friday (2026-11-27 05:00 Asia/Kolkata)" in finding.message
	# Saturday 02:00 UTC is still Friday evening in New York.
	assert not pf.freeze(
		datetime(2026, 11, 28, 2, 0, tzinfo=UTC), "America/New_York", "Production", "Production"
	).ok


def test_friday_rule_by_environment():
	friday = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
	assert pf.freeze(friday, "UTC", "Staging", "Production").ok
	assert not pf.freeze(friday, "UTC", "Staging", "All environments").ok
	assert pf.freeze(friday, "UTC", "Production", "Off").ok


def test_freeze_needs_an_aware_time():
	with pytest.raises(ValueError):
		pf.freeze(datetime(2026, 11, 27, 10, 0), "UTC", "Production", "Production")


def test_date_windows_are_inclusive_and_local():
	year_end = pf.Window("year end", from_date=date(2026, 12, 24), to_date=date(2026, 12, 31))
	assert year_end.covers(datetime(2026, 12, 24, 0, 0), "Production")
	assert year_end.covers(datetime(2026, 12, 31, 23, 59), "Production")
	assert not year_end.covers(datetime(2027, 1, 1, 0, 0), "Production")
	# 2026-12-31 20:00 UTC is already 2027-01-01 in Auckland: outside the window there.
	moment = datetime(2026, 12, 31, 20, 0, tzinfo=UTC)
	assert not pf.freeze(moment, "UTC", "Production", "Off", [year_end]).ok
	assert pf.freeze(moment, "Pacific/Auckland", "Production", "Off", [year_end]).ok


def test_nightly_window_wraps_past_midnight():
	nightly = pf.Window("batch jobs", from_time=time(22, 0), to_time=time(6, 0))
	assert nightly.covers(datetime(2026, 11, 24, 23, 0), "Staging")
	assert nightly.covers(datetime(2026, 11, 25, 5, 59), "Staging")
	assert not nightly.covers(datetime(2026, 11, 25, 6, 0), "Staging")
	assert not nightly.covers(datetime(2026, 11, 25, 12, 0), "Staging")


def test_window_parts_all_must_match():
	payroll = pf.Window(
		"payroll",
		environments=frozenset({"Production"}),
		weekday="Monday",
		from_time=time(9),
		to_time=time(12),
	)
	monday_ten = datetime(2026, 11, 23, 10, 0)
	assert payroll.covers(monday_ten, "Production")
	assert not payroll.covers(monday_ten, "Staging")
	assert not payroll.covers(datetime(2026, 11, 24, 10, 0), "Production")  # Tuesday
	assert not payroll.covers(datetime(2026, 11, 23, 13, 0), "Production")
	finding = pf.freeze(
		datetime(2026, 11, 23, 10, 0, tzinfo=UTC), "UTC", "Production", "Production", [payroll]
	)
	assert finding.message == "freeze window payroll"


def _findings():
	return [
		pf.code_quality("shop", "a" * 40, {"Tests": "Passed", "Lint": "Passed"}),
		pf.clean_trees([]),
		*pf.one_change([], ["shop", "crm"]),
	]


def test_decision_table_blocks_by_environment():
	production = pf.judge(_findings(), "Production")
	assert [f.status for f in production.findings] == [pf.BLOCK, pf.PASS, pf.PASS, pf.WARN]
	assert not production.go
	assert production.summary().startswith("Blocked: Code quality: shop aaaaaaaaaa: no evidence of review")
	staging = pf.judge(_findings(), "Staging")
	assert [f.status for f in staging.findings] == [pf.WARN, pf.PASS, pf.PASS, pf.WARN]
	assert staging.go
	assert staging.summary() == "Clear to deploy: 4 items, 2 warnings"


def test_rules_from_settings_override_defaults():
	strict = pf.judge(_findings(), "Development", {pf.CODE_QUALITY: "Every environment"})
	assert strict.findings[0].status == pf.BLOCK
	lenient = pf.judge([pf.clean_trees(["shop"])], "Production", {pf.CLEAN_TREES: "Never"})
	assert lenient.findings[0].status == pf.WARN and lenient.go
	# Advice never blocks, whatever the rule says.
	advice = pf.judge(pf.one_change([], ["a", "b"]), "Production", {pf.ONE_CHANGE: "Every environment"})
	assert advice.go


def test_override_needs_a_reason():
	assert not pf.judge(_findings(), "Production", override_reason="   ").go
	overridden = pf.judge(_findings(), "Production", override_reason="hotfix for the invoice bug")
	assert overridden.go
	assert overridden.summary().startswith("Blocks overridden (hotfix for the invoice bug): Code quality")


def test_code_quality_evidence():
	commit = "b" * 40
	assert pf.code_quality("shop", commit, dict.fromkeys(pf.QUALITY_EVIDENCE, "Passed")).ok
	failed = pf.code_quality("shop", commit, {"Tests": "Failed", "Lint": "Passed", "Review": "Passed"})
	assert not failed.ok and failed.message == "Tests failed for this commit"
	assert pf.code_quality("shop", commit, {}).message == "no evidence of tests, lint, review for this commit"


def test_build_safety_environment_staging():
	commit = "c" * 40
	assert pf.build("shop", commit, {}, has_assets=False).ok
	assert not pf.build("shop", commit, {}, has_assets=True).ok
	assert not pf.build("shop", commit, {"Build": "Failed"}, has_assets=False).ok
	assert pf.safety("BKP-1", 2.0, 24, 1).ok
	old = pf.safety("BKP-1", 30.0, 24, 0)
	assert (
		old.message
		== "the newest Verified backup BKP-1 is 30.0h old (max 24h); no restorable rollback candidate"
	)
	assert pf.safety(None, None, 24, 1).message == "no Verified backup"
	env = pf.environment_keys(["mail_server"], {"encryption_key": True, "backup_encryption_key": False})
	assert env.message == "mail_server missing from site config; backup_encryption_key not set"
	assert pf.staging_first("Staging", {"shop": commit}, {}).ok
	missing = pf.staging_first("Production", {"shop": commit, "crm": "d" * 40}, {"crm": "stage.example.com"})
	assert missing.message == "not Confirmed on Staging: shop cccccccccc"
	assert pf.staging_first("Production", {"shop": commit}, {"shop": "stage.example.com"}).ok


def test_clock_reads_hours_and_minutes():
	assert pf.clock("22:00") == time(22, 0)
	assert pf.clock(" 6:05 ") == time(6, 5)
	assert pf.clock("") is None
	for bad in ("25:00", "noon", "10"):
		with pytest.raises(ValueError):
			pf.clock(bad)
