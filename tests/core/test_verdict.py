import pytest

from deploy_manager.core.checks import ERROR, FAIL, PASS, WARN, CheckResult
from deploy_manager.core.verdict import (
	CONFIRM,
	CONSIDER_ROLLBACK,
	FIX_FORWARD,
	INCONCLUSIVE,
	ROLLBACK,
	ROLLBACK_IMMEDIATELY,
	decide,
)


def result(status, symptom, name="check", message="says so"):
	return CheckResult(status, message, name=name, symptom=symptom)


@pytest.mark.parametrize(
	"symptom, action",
	[
		("service_down", ROLLBACK_IMMEDIATELY),
		("critical", ROLLBACK),
		("performance", CONSIDER_ROLLBACK),
		("minor", FIX_FORWARD),
	],
)
def test_a_failing_check_gives_its_symptoms_action(symptom, action):
	verdict = decide([result(PASS, "service_down"), result(FAIL, symptom, name="Bad")])
	assert verdict.action == action
	assert verdict.reason == "Bad: says so"


@pytest.mark.parametrize("status", [WARN, ERROR])
@pytest.mark.parametrize("symptom", ["service_down", "critical", "performance", "minor"])
def test_a_warning_or_an_unrunnable_check_is_at_most_fix_forward(status, symptom):
	assert decide([result(status, symptom)]).action == FIX_FORWARD


def test_all_passing_confirms():
	verdict = decide([result(PASS, "service_down"), result(PASS, "critical")])
	assert (verdict.action, verdict.reason) == (CONFIRM, "All 2 checks passed")


def test_the_worst_action_wins_and_names_only_its_culprits():
	verdict = decide(
		[
			result(FAIL, "minor", name="Disk"),
			result(FAIL, "critical", name="Workers", message="no worker alive"),
			result(FAIL, "critical", name="Errors", message="12 new errors"),
			result(FAIL, "performance", name="Speed"),
		]
	)
	assert verdict.action == ROLLBACK
	assert verdict.reason == "Workers: no worker alive; Errors: 12 new errors"


def test_no_results_is_not_a_confirmation():
	assert decide([]).action == FIX_FORWARD


@pytest.mark.parametrize(
	"action, code",
	[(CONFIRM, 0), (FIX_FORWARD, 0), (CONSIDER_ROLLBACK, 1), (ROLLBACK, 2), (ROLLBACK_IMMEDIATELY, 2)],
)
def test_exit_codes_for_pipelines(action, code):
	from deploy_manager.core.verdict import Verdict

	assert Verdict(action, "").exit_code == code


def transient(status, symptom, name="Scheduler", message="not ticking"):
	return CheckResult(status, message, name=name, symptom=symptom, transient=True)


def test_a_transient_failure_seen_once_is_inconclusive_and_names_what_to_check_again():
	verdict = decide([result(PASS, "critical"), transient(FAIL, "critical")], {}, in_a_row=2)
	assert verdict.action == INCONCLUSIVE
	assert verdict.recheck == ("Scheduler",)
	assert verdict.reason == "Scheduler: not ticking (failed 1 of 2 runs in a row needed: checking again)"
	assert verdict.exit_code == 1


def test_a_transient_failure_that_repeats_counts():
	verdict = decide([transient(FAIL, "critical")], {"Scheduler": 1}, in_a_row=2)
	assert (verdict.action, verdict.recheck) == (ROLLBACK, ())
	# Failed in an earlier run but not in the one just before: the count starts again.
	assert decide([transient(FAIL, "critical")], {"Workers": 1}, in_a_row=2).action == INCONCLUSIVE


def test_one_run_in_a_row_is_the_old_rule():
	assert decide([transient(FAIL, "critical")]).action == ROLLBACK


def test_the_site_down_counts_at_once_even_from_a_transient_check():
	verdict = decide([transient(FAIL, "service_down", name="Ping")], {}, in_a_row=3)
	assert verdict.action == ROLLBACK_IMMEDIATELY


def test_a_counted_failure_as_bad_wins_over_waiting_for_a_transient_one():
	verdict = decide(
		[result(FAIL, "critical", name="Errors", message="12 new"), transient(FAIL, "critical")],
		{},
		in_a_row=2,
	)
	assert (verdict.action, verdict.reason) == (ROLLBACK, "Errors: 12 new")


def test_a_transient_failure_no_worse_than_what_counts_does_not_hold_the_verdict():
	verdict = decide(
		[result(FAIL, "critical", name="Errors", message="12 new"), transient(FAIL, "performance")],
		{},
		in_a_row=2,
	)
	assert verdict.action == ROLLBACK
	# A transient warning is no failure: nothing to wait for.
	assert decide([transient(WARN, "critical")], {}, in_a_row=2).action == FIX_FORWARD
