"""Which platform a bench is on, from the bench itself."""

from deploy_manager.core.environment import detect_platform


def test_a_bench_in_a_container_is_a_bench_and_an_image_is_not(tmp_path):
	marker = tmp_path / ".dockerenv"
	marker.touch()
	bench = tmp_path / "frappe-bench"
	(bench / "apps" / "frappe").mkdir(parents=True)
	image = {"markers": (str(marker),)}
	assert detect_platform(bench, environ={}, **image) == "Docker"
	assert detect_platform(bench, environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, **image) == "Kubernetes"
	(bench / "config").mkdir()
	(bench / "config" / "supervisor.conf").touch()
	assert detect_platform(bench, environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, **image) == "Bench"
	(bench / "config" / "supervisor.conf").unlink()
	(bench / "apps" / "frappe" / ".git").mkdir()
	assert detect_platform(bench, environ={}, **image) == "Bench"
	assert detect_platform(tmp_path / "elsewhere", environ={}, markers=()) == "Bench"


def test_a_process_under_bench_update_knows_when_it_began(tmp_path):
	import subprocess
	import sys
	import time

	from deploy_manager.core.environment import bench_update_started

	# A parent whose command line reads `.../bench update`, as bench's CLI's does, and a child that asks.
	bench = tmp_path / "bench"
	bench.write_text(f'#!/bin/sh\n{sys.executable} -c "$PYTHON_CODE"\n')
	bench.chmod(0o755)
	code = (
		"import subprocess, sys; print(subprocess.run([sys.executable, '-c', 'from deploy_manager.core."
		"environment import bench_update_started as s; print(s())'], capture_output=True, text=True).stdout)"
	)
	before = time.time()
	run = lambda *args: subprocess.run(  # noqa: E731
		[str(bench), *args], capture_output=True, text=True, env={"PYTHON_CODE": code, "PYTHONPATH": "."}
	).stdout.strip()
	started = float(run("update"))
	assert before - 2 <= started <= time.time()
	assert run("migrate") == "None"
	assert bench_update_started() is None  # pytest runs under no bench update
