import pytest

from deploy_manager.core.checks import ERROR, FAIL, PASS, WARN, CheckResult
from deploy_manager.core.verdict import (
	CONFIRM,
	CONSIDER_ROLLBACK,
	FIX_FORWARD,
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
