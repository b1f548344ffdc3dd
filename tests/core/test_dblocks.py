"""The lock guard against the machine's MariaDB: a site user's leftover transaction ended, a blocker
of another user named and never ended, the waiting statement stopped at the bound."""

import contextlib
import secrets
import subprocess
import time

import pymysql
import pytest

from deploy_manager.core.dblocks import LOOPBACK, Connection, LockGuard, holdup, read_process_list

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
	for connection in HELD:
		with contextlib.suppress(pymysql.MySQLError):
			connection.close()
	with admin.cursor() as cursor:
		# A test that failed may have left a holder behind: this clean-up must not wait a day for it.
		cursor.execute("SET SESSION lock_wait_timeout = 10")
		cursor.execute(f"DROP DATABASE IF EXISTS `{DB}`")
		for user in (SITE_USER, OTHER_USER):
			cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
	admin.close()


def hold_todo(user: str):
	"""A connection idle inside an open transaction that read tabToDo, as a stuck web worker's is."""
	connection = tcp(user)
	HELD.append(connection)
	with connection.cursor() as cursor:
		cursor.execute("SELECT * FROM tabToDo")
		cursor.fetchall()
	return connection


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
	leftover_id = leftover.thread_id()
	said = []
	with guard(60, said):
		child = alter_in_child()
		out, _ = child.communicate(timeout=30)
	assert child.returncode == 0, out
	assert column_added()
	assert any("waits: connection" in s and f"held by connection {leftover_id}" in s for s in said), said
	assert any(
		f"ended the site's leftover connection {leftover_id} ({SITE_USER}@127.0.0.1" in s for s in said
	)
	assert f"{SITE_USER}@127.0.0.1" in " ".join(said) and "in an open transaction" in " ".join(said)
	with pytest.raises(pymysql.MySQLError):
		leftover.ping(reconnect=False)


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
	assert f"connection {blocker.thread_id()} ({OTHER_USER}@127.0.0.1" in watching.stopped
	assert "never ended" in watching.stopped
	assert not column_added()
	blocker.ping(reconnect=False)  # still there: not ours to end
	blocker.close()


def test_an_open_site_keeps_its_own_connections_and_the_step_still_stops_at_the_bound():
	leftover = hold_todo(SITE_USER)
	said = []
	with guard(3, said, end_leftovers=False) as watching:
		child = alter_in_child()
		out, _ = child.communicate(timeout=30)
	assert child.returncode != 0, out
	assert "the site is open" in watching.stopped
	leftover.ping(reconnect=False)
	leftover.close()


def test_no_wait_no_report_and_the_step_runs():
	said = []
	with guard(60, said) as watching:
		child = alter_in_child()
		out, _ = child.communicate(timeout=30)
	assert child.returncode == 0, out
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
	assert any(f"ended the site's leftover connection {leftover.thread_id()}" in s for s in said), said


def test_the_process_list_reads_transactions():
	holder = hold_todo(SITE_USER)
	with root() as connection:
		found = {c.id: c for c in read_process_list(connection)}
	assert found[holder.thread_id()].in_transaction is True
	assert found[holder.thread_id()].command == "Sleep"
	holder.close()


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
	found = holdup(rows, DB, {8}, "site", LOOPBACK, {"site", "root"})
	assert [c.id for c in found.waiters] == [1, 2]
	assert [c.id for c in found.leftovers] == [3]
	assert [c.id for c in found.outside] == [5, 6]
	assert holdup(rows, DB, {8}, "site", LOOPBACK, {"nobody"}) is None
	assert {conn(9, host=h).machine for h in ("::1:4321", "localhost", "127.0.0.1:80")} == {LOOPBACK}
	assert conn(9, host="10.0.0.9:5000").machine == "10.0.0.9"
