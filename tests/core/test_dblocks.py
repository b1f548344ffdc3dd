"""The lock guard against the machine's MariaDB: a site user's leftover transaction ended, a blocker
of another user named and never ended, the waiting statement stopped at the bound."""

import os
import secrets
import subprocess
import sys
import time

import pymysql
import pytest

from deploy_manager.core.dblocks import (
	LOOPBACK,
	Connection,
	LockGuard,
	client_ports,
	holdup,
	read_process_list,
)

DB = f"dm_locks_{secrets.token_hex(4)}"
SITE_USER = f"dm_site_{secrets.token_hex(3)}"
OTHER_USER = f"dm_other_{secrets.token_hex(3)}"
PASSWORD = secrets.token_hex(8)
HELD = []


def root(**kwargs):
	# As .ci/run and the test bench leave it: root over the server's socket.
	return pymysql.connect(user="root", unix_socket="/run/mysqld/mysqld.sock", autocommit=True, **kwargs)


def tcp(user: str, **kwargs):
	return pymysql.connect(host="127.0.0.1", user=user, password=PASSWORD, database=DB, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def database():
	try:
		admin = root()
	except pymysql.MySQLError as e:
		pytest.fail(f"these tests need the machine's MariaDB (.ci/run starts it): {e}")
	with admin.cursor() as cursor:
		cursor.execute(f"CREATE DATABASE `{DB}`")
		cursor.execute(f"CREATE TABLE `{DB}`.`tabToDo` (name varchar(140) primary key, n int)")
		cursor.execute(f"INSERT INTO `{DB}`.`tabToDo` VALUES ('a', 1)")
		for user in (SITE_USER, OTHER_USER):
			cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
			cursor.execute(f"GRANT ALL ON `{DB}`.* TO '{user}'@'%'")
	yield
	with admin.cursor() as cursor:
		# A test that failed may have left a holder behind: this clean-up must not wait a day for it.
		cursor.execute("SET SESSION lock_wait_timeout = 10")
		cursor.execute(f"DROP DATABASE IF EXISTS `{DB}`")
		for user in (SITE_USER, OTHER_USER):
			cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
	admin.close()


@pytest.fixture(autouse=True)
def release():
	yield
	for holder in HELD:
		holder.stdin.close()  # the holder reads to the end of its input, then ends
		holder.wait(timeout=30)
	HELD.clear()
	# Its connection ends with it: the next test starts with no holder.
	with root() as connection, connection.cursor() as cursor:
		for _ in range(50):
			cursor.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s", DB)
			if cursor.fetchone()[0] == 0:
				break
			time.sleep(0.1)


HOLDER = """
import os, sys, pymysql
if sys.argv[5:] == ["detach"] and os.fork():
	os._exit(0)  # the holder lives on outside this process tree, as a web worker is outside a deploy's
connection = pymysql.connect(host="127.0.0.1", user=sys.argv[1], password=sys.argv[2], database=sys.argv[3])
with connection.cursor() as cursor:
	cursor.execute(sys.argv[4])
	cursor.fetchall()
print(connection.thread_id(), flush=True)
sys.stdin.read()  # until the test ends
"""


def hold_todo(user: str, statement: str = "SELECT * FROM tabToDo") -> int:
	"""A connection of another process (a web worker's, say) idle inside an open transaction that
	read tabToDo; returns its id. It lives until the test module ends, or until it is ended."""
	holder = subprocess.Popen(
		[sys.executable, "-c", HOLDER, user, PASSWORD, DB, statement, "detach"],
		stdin=subprocess.PIPE,
		stdout=subprocess.PIPE,
		text=True,
	)
	HELD.append(holder)
	return int(holder.stdout.readline())


def alive(connection_id: int) -> bool:
	with root() as connection, connection.cursor() as cursor:
		cursor.execute("SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = %s", connection_id)
		return cursor.fetchone() is not None


def alter_in_child(bound: int = 120) -> subprocess.Popen:
	"""The step: an ALTER on tabToDo as the site user, in a process of its own as a migrate runs."""
	return subprocess.Popen(
		[
			"mariadb",
			f"--init-command=SET SESSION lock_wait_timeout = {bound}",
			"-h127.0.0.1",
			f"-u{SITE_USER}",
			f"-p{PASSWORD}",
			DB,
			"-e",
			"ALTER TABLE tabToDo ADD COLUMN extra int",
		],
		stdout=subprocess.PIPE,
		stderr=subprocess.STDOUT,
		text=True,
	)


def guard(bound: float, said: list, **kwargs) -> LockGuard:
	return LockGuard(lambda: root(), DB, SITE_USER, bound, say=said.append, **kwargs)


def column_added() -> bool:
	with root() as connection, connection.cursor() as cursor:
		cursor.execute(f"SHOW COLUMNS FROM `{DB}`.`tabToDo` LIKE 'extra'")
		found = cursor.fetchone() is not None
		if found:
			cursor.execute(f"ALTER TABLE `{DB}`.`tabToDo` DROP COLUMN extra")
		return found


def test_a_leftover_of_the_site_user_is_ended_and_named():
	leftover = hold_todo(SITE_USER)
	said = []
	with guard(60, said):
		child = alter_in_child()
		out, _ = child.communicate(timeout=30)
	assert child.returncode == 0, out
	assert column_added()
	assert any("waits: connection" in s and f"held by connection {leftover}" in s for s in said), said
	assert any(f"ended the site's leftover connection {leftover} ({SITE_USER}@127.0.0.1" in s for s in said)
	assert "in an open transaction" in " ".join(said)
	assert not alive(leftover)


def test_a_blocker_of_another_user_is_named_never_ended_and_the_step_stops_at_the_bound():
	blocker = hold_todo(OTHER_USER)
	said = []
	started = time.monotonic()
	with guard(4, said) as watching:
		child = alter_in_child()
		out, _ = child.communicate(timeout=30)
	took = time.monotonic() - started
	assert child.returncode != 0 and "interrupted" in out.lower(), out
	assert took < 15, took
	assert f"connection {blocker} ({OTHER_USER}@127.0.0.1" in watching.stopped
	assert "never ended" in watching.stopped
	assert not column_added()
	assert alive(blocker)  # not ours to end


def test_an_open_site_keeps_its_own_connections_and_the_step_still_stops_at_the_bound():
	leftover = hold_todo(SITE_USER)
	said = []
	with guard(3, said, end_leftovers=False) as watching:
		child = alter_in_child()
		out, _ = child.communicate(timeout=30)
	assert child.returncode != 0, out
	assert "the site is open" in watching.stopped
	assert alive(leftover)


def test_no_wait_no_report_and_the_step_runs():
	said = []
	with guard(60, said) as watching:
		child = alter_in_child()
		out, _ = child.communicate(timeout=30)
	assert child.returncode == 0, out
	assert column_added()
	assert said == [] and watching.stopped == ""


def test_the_steps_own_statement_is_never_ended_when_others_queue_behind_it():
	"""The step holds tabToDo (a long patch, say) and a site user's ALTER from another process waits
	behind it: that wait is not the step's, and the step's connection is no leftover."""
	said = []
	with guard(2, said) as watching:
		step = subprocess.Popen(
			[sys.executable, "-c", HOLDER, SITE_USER, PASSWORD, DB, "SELECT *, SLEEP(6) FROM tabToDo"],
			stdin=subprocess.DEVNULL,
			stdout=subprocess.PIPE,
			text=True,
		)
		time.sleep(1)
		other = subprocess.Popen(
			[
				sys.executable,
				"-c",
				HOLDER,
				SITE_USER,
				PASSWORD,
				DB,
				"ALTER TABLE tabToDo ADD COLUMN extra int",
				"detach",
			],
			stdin=subprocess.PIPE,
			stdout=subprocess.PIPE,
			text=True,
		)
		HELD.append(other)
		out, _ = step.communicate(timeout=30)
		assert step.returncode == 0 and out.strip().isdigit(), out
	assert other.stdout.readline().strip().isdigit()  # the ALTER ran once the step was done
	assert column_added()
	assert said == [] and watching.stopped == ""


def test_without_process_privilege_the_site_user_sees_and_ends_its_own_leftovers():
	leftover = hold_todo(SITE_USER)
	said = []
	with LockGuard(lambda: tcp(SITE_USER, autocommit=True), DB, SITE_USER, 60, say=said.append):
		child = alter_in_child()
		out, _ = child.communicate(timeout=30)
	assert child.returncode == 0, out
	assert column_added()
	assert any(f"ended the site's leftover connection {leftover}" in s for s in said), said


def test_the_process_list_reads_transactions_and_client_ports():
	holder = hold_todo(SITE_USER)
	mine = tcp(SITE_USER)
	with root() as connection:
		found = {c.id: c for c in read_process_list(connection)}
	assert found[holder].in_transaction is True
	assert found[holder].command == "Sleep"
	ports = client_ports(os.getpid())
	assert found[mine.thread_id()].port in ports
	assert found[holder].port not in ports  # another process's, outside this process tree
	mine.close()


def test_who_holds_who_waits_and_who_is_ours():
	def conn(id, user="site", host="127.0.0.1:4000", db=DB, command="Sleep", state="", info="", trx=False):
		return Connection(id, user, host, db, command, 5, state, info, trx)

	waiting = conn(1, command="Query", state="Waiting for table metadata lock", info="ALTER TABLE x")
	drop = conn(2, user="root", db=None, command="Query", state="Waiting for schema metadata lock")
	drop = Connection(2, "root", "localhost", None, "Query", 5, drop.state, f"DROP DATABASE `{DB}`", False)
	rows = [
		waiting,
		drop,
		conn(3, trx=True),  # a leftover
		conn(4, trx=False),  # idle, outside any transaction: holds nothing
		conn(5, user="other", trx=True),  # outside: another user
		conn(6, host="10.0.0.9:5000", trx=True),  # outside: another host
		conn(7, db="elsewhere", trx=True),  # another database
		conn(8, trx=True),  # ours
	]
	# The step's connections unknown (a unix socket): waiters by user, holders only idle in a transaction.
	found = holdup(rows, DB, {8}, "site", LOOPBACK, {"site", "root"}, ours_known=False)
	assert [c.id for c in found.waiters] == [1, 2]
	assert [c.id for c in found.leftovers] == [3]
	assert [c.id for c in found.outside] == [5, 6]
	assert holdup(rows, DB, {8}, "site", LOOPBACK, {"nobody"}, ours_known=False) is None
	# Known (1 and 8 are the step's): only the step's waits count, running statements may hold it.
	running = conn(10, command="Query", info="SELECT SLEEP(100)")
	found = holdup([*rows, running], DB, {1, 8}, "site", LOOPBACK, set(), ours_known=True)
	assert [c.id for c in found.waiters] == [1]
	assert [c.id for c in found.leftovers] == [3, 10]
	assert holdup(rows, DB, {3, 8}, "site", LOOPBACK, {"site", "root"}, ours_known=True) is None
	assert {conn(9, host=h).machine for h in ("::1:4321", "localhost", "127.0.0.1:80")} == {LOOPBACK}
	assert conn(9, host="10.0.0.9:5000").machine == "10.0.0.9"
