"""The process table read from /proc, with real processes: a session that outlives its starter is
found alive, a pid whose start time differs is another process, zombies and ended groups are gone."""

import contextlib
import os
import signal
import subprocess
import sys
import time

from deploy_manager.core import proctable


def sleeper(*args: str, **kwargs) -> subprocess.Popen:
	return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *args], **kwargs)


def test_a_group_in_a_session_of_its_own_lives_on_until_its_last_process_ends():
	# A child in its own session that starts a grandchild: as `bench restore` starts gzip and mariadb.
	leader = subprocess.Popen(
		[
			sys.executable,
			"-c",
			"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)",
		],
		start_new_session=True,
	)
	try:
		start = proctable.started(leader.pid)
		for _ in range(50):
			found = proctable.living((0, None), [(leader.pid, start)])
			if len(found) == 2:
				break
			time.sleep(0.1)
		assert len(found) == 2 and leader.pid in found, found
		grandchild = next(pid for pid in found if pid != leader.pid)
		assert proctable.family(os.getpid()) >= {leader.pid, grandchild}

		leader.kill()
		leader.wait()
		# The leader is gone, its grandchild still runs in the group: the group lives.
		assert proctable.living((0, None), [(leader.pid, start)]) == [grandchild]
		os.kill(grandchild, signal.SIGKILL)
		for _ in range(50):
			if not proctable.living((0, None), [(leader.pid, start)]):
				break
			time.sleep(0.1)
		assert proctable.living((0, None), [(leader.pid, start)]) == []
	finally:
		with contextlib.suppress(ProcessLookupError):
			os.killpg(leader.pid, signal.SIGKILL)


def test_an_owner_is_a_pid_and_its_start_time():
	child = sleeper()
	try:
		start = proctable.started(child.pid)
		assert proctable.living((child.pid, start), []) == [child.pid]
		# The same pid with another start time is another process: a reused pid.
		assert proctable.living((child.pid, start + 1), []) == []
		assert proctable.living((child.pid, None), []) == [child.pid]  # a note that recorded no time
		child.kill()
		time.sleep(0.2)
		# Killed and not yet reaped by us, its parent: a zombie runs nothing.
		assert proctable.read(child.pid).zombie
		assert proctable.living((child.pid, start), []) == []
	finally:
		child.kill()
		child.wait()


def test_a_process_that_never_was():
	assert proctable.read(2**22 + 7) is None
	assert proctable.living((2**22 + 7, None), [(2**22 + 9, None)]) == []


def test_groups_are_ended_whole_and_one_that_ignores_sigterm_is_killed():
	stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
	leader = subprocess.Popen(
		[
			sys.executable,
			"-c",
			f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {stubborn!r}]); time.sleep(60)",
		],
		start_new_session=True,
	)
	try:
		group = [(leader.pid, proctable.started(leader.pid))]
		for _ in range(50):
			if len(proctable.living((0, None), group)) == 2:
				break
			time.sleep(0.1)
		assert proctable.command(leader.pid).startswith(sys.executable + " -c import subprocess")
		ended = proctable.end(group, wait=1)
		leader.wait(timeout=5)
		assert len(ended) == 2 and ended[0].startswith(f"pid {leader.pid} ("), ended
		assert proctable.living((0, None), group) == []
		assert proctable.command(leader.pid) == ""
		assert proctable.end(group, wait=1) == []
	finally:
		with contextlib.suppress(ProcessLookupError):
			os.killpg(leader.pid, signal.SIGKILL)


def test_a_command_line_is_read_with_its_secrets_masked():
	args = [
		"--user=site",
		"--password=hunter2",
		"-psecret3",
		"--passphrase",
		"gpg-secret",
		"https://bot:tok3n@hooks.example.com/x",
		"db-pass-from-config",
	]
	child = sleeper(*args)
	try:
		for _ in range(100):  # until the child has exec'd its command line
			shown = proctable.command(child.pid, secrets=("db-pass-from-config",), limit=1000)
			if "db-pass" in shown or "***" in shown:
				break
			time.sleep(0.05)
		for secret in ("hunter2", "secret3", "gpg-secret", "tok3n", "db-pass-from-config"):
			assert secret not in shown, shown
		assert (
			"--user=site --password=*** -p*** --passphrase *** https://bot:***@hooks.example.com/x ***"
			in shown
		)
	finally:
		child.kill()
		child.wait()
