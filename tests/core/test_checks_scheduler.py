from datetime import datetime, timedelta

from deploy_manager.core.checks import ERROR, FAIL, PASS, WARN, Target
from deploy_manager.core.checks.scheduler import scheduled_jobs, scheduler

NOW = datetime(2026, 12, 2, 12, 0, 0)


def job(method, due_minutes_ago=0.0, queued=False, ran_minutes_ago=None, jitter=0, queued_minutes_ago=1):
	return {
		"method": method,
		"due": NOW - timedelta(minutes=due_minutes_ago),
		"jitter": jitter,
		"queued": queued,
		"queued_at": NOW - timedelta(minutes=queued_minutes_ago) if queued else None,
		"ran_at": None if ran_minutes_ago is None else NOW - timedelta(minutes=ran_minutes_ago),
	}


def facts(**given):
	state = {
		"site": "shop.example.com",
		"enabled": True,
		"paused": False,
		"production": True,
		"dormant": False,
		"now": NOW,
		"resumed_at": NOW - timedelta(hours=5),
		"tick": 60,
		"jobs": [job("frappe.monitor.flush", due_minutes_ago=-1, ran_minutes_ago=0.5)],
		"failed_since": {},
		"failed_before": {},
	}
	return Target(extra={"scheduler": {**state, **given}})


def test_an_enabled_scheduler_with_nothing_overdue_passes():
	result = scheduler(facts())
	assert result.status == PASS
	assert result.message == "ticking: 1 job(s) enqueued or run since 07:00:00 (300 min ago), none overdue"


def test_paused_fails_with_the_command_that_resumes_it():
	result = scheduler(facts(paused=True))
	assert result.status == FAIL
	assert result.message == (
		"paused in site config, as a failed bench update leaves it: "
		"bench --site shop.example.com scheduler resume"
	)


def test_paused_fails_outside_production_too_and_says_when_it_is_also_disabled():
	result = scheduler(facts(paused=True, enabled=False, production=False))
	assert result.status == FAIL
	assert "(and disabled in System Settings)" in result.message


def test_disabled_fails_in_production_and_warns_elsewhere():
	result = scheduler(facts(enabled=False))
	assert result.status == FAIL
	assert result.message == "disabled in System Settings: bench --site shop.example.com scheduler enable"
	assert scheduler(facts(enabled=False, production=False)).status == WARN


def test_without_the_sites_name_the_command_names_a_placeholder():
	state = facts(enabled=False).extra["scheduler"]
	del state["site"]
	assert scheduler(Target(extra={"scheduler": state})).message.endswith(
		"bench --site SITE scheduler enable"
	)


def test_due_jobs_and_nothing_run_since_it_reopened_mean_it_is_not_ticking():
	jobs = [job(f"job_{n}", due_minutes_ago=30, ran_minutes_ago=90) for n in range(7)]
	result = scheduler(facts(jobs=jobs, resumed_at=NOW - timedelta(minutes=20)))
	assert result.status == FAIL
	assert result.message == (
		"not ticking: nothing enqueued or run since 11:40:00 (20 min ago); "
		"7 due job(s) did not run (job_0, job_1, job_2, job_3, job_4 and 2 more)"
	)
	assert result.value == "7 overdue"
	assert result.transient is False  # filled in by `run` from the registration


def test_jobs_due_while_the_site_was_closed_are_not_late_until_two_rounds_after_it_reopened():
	# As `bench update` leaves a site: every job overdue by the time it was closed; reopened 90 s ago.
	jobs = [job(f"job_{n}", due_minutes_ago=40, ran_minutes_ago=45) for n in range(5)]
	assert scheduler(facts(jobs=jobs, resumed_at=NOW - timedelta(seconds=90))).status == PASS
	assert scheduler(facts(jobs=jobs, resumed_at=NOW - timedelta(seconds=150))).status == FAIL
	# With a scheduler that ticks every 10 s, two rounds are 20 s.
	assert scheduler(facts(jobs=jobs, resumed_at=NOW - timedelta(seconds=25), tick=10)).status == FAIL


def test_times_a_restore_brought_back_are_not_evidence():
	# A backup from days ago: every job's last run is old, and the rollback reopened the site just now.
	jobs = [job("frappe.daily", due_minutes_ago=3 * 24 * 60, ran_minutes_ago=4 * 24 * 60)]
	result = scheduler(facts(jobs=jobs, resumed_at=NOW - timedelta(seconds=30)))
	assert result.status == PASS
	assert result.message == "ticking: 0 job(s) enqueued or run since 11:59:30 (0 min ago), none overdue"


def test_a_due_job_in_the_queue_or_running_did_not_fail_to_run():
	jobs = [job(f"job_{n}", due_minutes_ago=30, queued=True) for n in range(3)]
	result = scheduler(facts(jobs=jobs, resumed_at=NOW - timedelta(minutes=20)))
	assert result.status == PASS
	assert "3 job(s) enqueued or run" in result.message


def test_a_job_queued_before_the_site_reopened_is_no_evidence_that_it_ticks_now():
	# Queued by a scheduler that has stopped since: never overdue (it waits), and no sign of life.
	jobs = [
		job("stale", due_minutes_ago=30, queued=True, queued_minutes_ago=40),
		job("late", due_minutes_ago=30),
	]
	result = scheduler(facts(jobs=jobs, resumed_at=NOW - timedelta(minutes=20)))
	assert result.status == FAIL
	assert result.message.endswith("1 due job(s) did not run (late)")


def test_long_jobs_get_the_jitter_frappe_may_add():
	late = [job("weekly_long", due_minutes_ago=8, jitter=600)]
	assert scheduler(facts(jobs=late)).status == PASS
	assert scheduler(facts(jobs=[job("weekly_long", due_minutes_ago=13, jitter=600)])).status == FAIL


def test_ticking_but_some_due_jobs_did_not_run_warns():
	jobs = [job("ran", ran_minutes_ago=1, due_minutes_ago=-3), job("stuck", due_minutes_ago=30)]
	result = scheduler(facts(jobs=jobs, resumed_at=NOW - timedelta(minutes=20)))
	assert result.status == WARN
	assert result.message == (
		"ticking (1 job(s) enqueued or run since 11:40:00 (20 min ago)), but 1 due job(s) did not run (stuck)"
	)


def test_a_dormant_site_is_told_from_a_stopped_scheduler():
	jobs = [job("hourly", due_minutes_ago=300, ran_minutes_ago=360)]
	result = scheduler(facts(jobs=jobs, dormant=True, dormant_days=4))
	assert result.status == WARN
	assert result.value == "dormant"
	assert result.message == (
		"dormant: nobody has used the site for 4 days, so Frappe runs its scheduled jobs once a day; "
		"1 due job(s) wait (hourly): a login makes the site active"
	)
	waiting_for_nothing = scheduler(facts(jobs=[job("hourly", due_minutes_ago=-30)], dormant=True))
	assert (waiting_for_nothing.status, waiting_for_nothing.value) == (PASS, "dormant")


def test_a_job_failing_only_since_the_deploy_fails_naming_it():
	result = scheduled_jobs(
		facts(
			failed_since={"shop.tasks.sync_orders": 4, "frappe.email.queue.flush": 2},
			failed_before={"frappe.email.queue.flush": 3},
		)
	)
	assert result.status == FAIL
	assert result.message == (
		"1 scheduled job(s) failing since the deploy that did not fail before: shop.tasks.sync_orders (4x)"
	)
	assert (result.value, result.baseline) == ("6 failures", "3 before")


def test_jobs_that_failed_before_too_only_warn():
	result = scheduled_jobs(facts(failed_since={"shop.tasks.a": 2}, failed_before={"shop.tasks.a": 5}))
	assert result.status == WARN
	assert result.message == "still failing as before the deploy: shop.tasks.a (2 since, 5 before)"


def test_no_failures_since_passes_whatever_failed_before():
	result = scheduled_jobs(facts(failed_since={"shop.tasks.a": 0}, failed_before={"shop.tasks.b": 9}))
	assert result.status == PASS
	assert result.message == "no scheduled job failed since the deploy"


def test_unreadable_or_missing_facts():
	for check in (scheduler, scheduled_jobs):
		unreadable = check(Target(extra={"scheduler": ConnectionError("db down")}))
		assert (unreadable.status, unreadable.message) == (
			ERROR,
			"the scheduler's state could not be read: db down",
		)
		assert check(Target()).status == WARN


def test_a_scheduler_that_ran_for_hours_then_stopped_is_not_ticking():
	# Busy since the site reopened five hours ago; nothing enqueued since its jobs fell due 10 min ago.
	jobs = [job(f"job_{n}", due_minutes_ago=10, ran_minutes_ago=15) for n in range(3)]
	result = scheduler(facts(jobs=jobs))
	assert result.status == FAIL
	assert result.message.startswith(
		"not ticking: nothing enqueued or run since 11:50:00 (10 min ago); 3 due"
	)
