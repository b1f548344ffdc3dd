import shutil

import pytest

from deploy_manager.core.checks import FAIL, PASS, WARN, Target
from deploy_manager.core.checks.system import DISK_FAIL, DISK_WARN, disk, memory


def expected_disk_status(path) -> str:
	usage = shutil.disk_usage(path)
	fraction = usage.free / usage.total
	return FAIL if fraction < DISK_FAIL else WARN if fraction < DISK_WARN else PASS


def test_disk_reports_the_fullest_disk_among_the_paths(tmp_path):
	result = disk(Target(extra={"paths": [str(tmp_path), "/"]}))
	assert result.status == expected_disk_status(tmp_path)
	assert "free" in result.message and result.value.endswith("%")


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
	assert memory(Target()).status in (PASS, WARN, FAIL)
	assert "memory available" in memory(Target()).message


def test_memory_without_figures_warns(tmp_path):
	assert memory(Target(extra={"meminfo": str(tmp_path / "none")})).status == WARN
