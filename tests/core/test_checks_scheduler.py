from deploy_manager.core.checks import ERROR, FAIL, PASS, WARN, Target
from deploy_manager.core.checks.scheduler import scheduled_jobs, scheduler


def facts(**given):
	state = {
		"site": "shop.example.com",
		"enabled": True,
		"paused": False,
		"production": True,
		"overdue": [],
		"failed_since": {},
		"failed_before": {},
	}
	return Target(extra={"scheduler": {**state, **given}})


def test_an_enabled_scheduler_with_nothing_overdue_passes():
	assert scheduler(facts()).status == PASS


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


def test_overdue_jobs_mean_it_is_not_ticking():
	overdue = [f"job_{n}" for n in range(7)]
	result = scheduler(facts(overdue=overdue))
	assert result.status == FAIL
	assert result.message == (
		"not ticking: 7 due job(s) did not run (job_0, job_1, job_2, job_3, job_4 and 2 more)"
	)
	assert result.value == "7 overdue"


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
