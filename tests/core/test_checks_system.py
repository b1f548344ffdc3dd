import shutil

import pytest

from deploy_manager.core.checks import FAIL, PASS, WARN, CheckResult, Target
from deploy_manager.core.checks.system import _remaining, disk, memory


def test_disk_reports_the_fullest_disk_among_the_paths(tmp_path):
	fullest = min(
		(str(tmp_path), "/dev/shm"), key=lambda p: shutil.disk_usage(p).free / shutil.disk_usage(p).total
	)
	result = disk(Target(extra={"paths": [str(tmp_path), "/dev/shm"]}))
	assert result.message.endswith(f"on the disk of {fullest}")
	assert result.threshold == "15%"


def test_running_out_is_graded_by_the_thresholds():
	assert _remaining(0.50, 0.15, 0.05, "m").status == PASS
	assert _remaining(0.10, 0.15, 0.05, "m").status == WARN
	assert _remaining(0.01, 0.15, 0.05, "m") == CheckResult(FAIL, "m", value="1%", threshold="15%")


def test_disk_of_a_missing_path_is_an_error_of_the_check(tmp_path):
	# run() turns the raised error into an `error` result; the check itself does not hide it.
	with pytest.raises(FileNotFoundError):
		disk(Target(extra={"paths": [str(tmp_path / "gone")]}))


def write_meminfo(tmp_path, total_kb, available_kb):
	path = tmp_path / "meminfo"
	path.write_text(
		f"MemTotal:       {total_kb} kB\nMemFree:        1 kB\nMemAvailable:   {available_kb} kB\n"
	)
	return str(path)


def test_memory_thresholds(tmp_path):
	assert memory(Target(extra={"meminfo": write_meminfo(tmp_path, 1000000, 500000)})).status == PASS
	assert memory(Target(extra={"meminfo": write_meminfo(tmp_path, 1000000, 50000)})).status == WARN
	low = memory(Target(extra={"meminfo": write_meminfo(tmp_path, 1000000, 10000)}))
	assert low.status == FAIL
	assert low.message == "0.0 GiB of 1.0 GiB memory available (1%)"


def test_memory_of_this_machine_reads_proc():
	assert " GiB memory available (" in memory(Target()).message


def test_memory_without_figures_warns(tmp_path):
	assert memory(Target(extra={"meminfo": str(tmp_path / "none")})).status == WARN
