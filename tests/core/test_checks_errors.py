from deploy_manager.core.checks import ERROR, FAIL, PASS, WARN, Target
from deploy_manager.core.checks.errors import error_logs


def facts(after=0, before=0, new=()):
	return Target(
		extra={
			"error_logs": {"after": after, "before": before, "new_titles": list(new), "window_minutes": 30}
		}
	)


def test_no_errors_passes():
	result = error_logs(facts())
	assert (result.status, result.value, result.baseline) == (PASS, "0 in 30 min", "0 before")


def test_a_new_kind_of_error_fails_naming_it():
	result = error_logs(facts(after=3, new=["shop.api.checkout"]))
	assert result.status == FAIL
	assert result.message == "1 new kind(s) of error since the deploy: shop.api.checkout"


def test_many_new_titles_are_cut_short():
	result = error_logs(facts(after=9, new=[f"e{n}" for n in range(8)]))
	assert result.message.endswith("e0, e1, e2, e3, e4 and 3 more")


def test_known_errors_rising_warns_and_steady_passes():
	assert error_logs(facts(after=12, before=5)).status == WARN
	assert error_logs(facts(after=6, before=5)).status == PASS
	assert error_logs(facts(after=3, before=0)).status == PASS  # below the noise floor


def test_unreadable_or_missing_facts():
	assert error_logs(Target(extra={"error_logs": ConnectionError("db down")})).status == ERROR
	assert error_logs(Target()).status == WARN
