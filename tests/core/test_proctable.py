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
