import subprocess
import sys
import threading
import time

from deploy_manager.core.checks import ERROR, PASS, Check, CheckResult, Secret, Target, run


def passing(target):
	return CheckResult(PASS, "fine", value="1")


def raising(target):
	raise ConnectionError("redis is gone")


def hanging(target):
	time.sleep(3)
	return CheckResult(PASS, "too late")


def test_results_carry_the_checks_identity_and_time():
	[result] = run([Check("Ping", "http", "service_down", passing)], Target())
	assert (result.name, result.category, result.symptom, result.status) == (
		"Ping",
		"http",
		"service_down",
		PASS,
	)
	assert result.duration >= 0


def test_a_check_that_raises_is_an_error_and_the_others_still_run():
	results = run(
		[Check("Redis", "dependencies", "critical", raising), Check("Ping", "http", "service_down", passing)],
		Target(),
	)
	assert [r.status for r in results] == [ERROR, PASS]
	assert results[0].message == "ConnectionError: redis is gone"


def test_a_hanging_check_ends_at_its_own_timeout_without_holding_the_suite():
	started = time.monotonic()
	results = run(
		[
			Check("Slow", "http", "service_down", hanging, timeout=0.2),
			Check("Ping", "http", "service_down", passing),
		],
		Target(),
	)
	took = time.monotonic() - started
	assert results[0].status == ERROR
	assert results[0].message == "did not finish within 0.2s"
	assert results[1].status == PASS
	assert took < 2, "the suite waited for the hanging check"


def test_the_deadline_bounds_the_whole_suite():
	results = run([Check("Slow", "http", "service_down", hanging, timeout=10)], Target(), deadline=0.2)
	assert results[0].message == "did not finish within 0.2s"


def test_checks_run_concurrently():
	barrier = threading.Barrier(2, timeout=2)

	def meets(target):
		barrier.wait()
		return CheckResult(PASS, "met")

	results = run([Check("A", "x", "minor", meets), Check("B", "x", "minor", meets)], Target())
	assert [r.status for r in results] == [PASS, PASS]


def test_a_hanging_check_does_not_keep_the_process_alive():
	code = (
		"import time\n"
		"from deploy_manager.core.checks import Check, Target, run\n"
		"run([Check('Slow', 'x', 'minor', lambda t: time.sleep(30), timeout=0.2)], Target())\n"
	)
	started = time.monotonic()
	subprocess.run([sys.executable, "-c", code], check=True, timeout=20)
	assert time.monotonic() - started < 10


def test_secrets_stay_out_of_reprs():
	target = Target(extra={"db": {"password": Secret("hunter2")}})
	assert "hunter2" not in repr(target)
	assert "hunter2" not in repr({"db": {"password": Secret("hunter2")}})
	assert Secret("hunter2") == "hunter2"
