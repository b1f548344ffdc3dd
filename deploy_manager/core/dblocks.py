"""Lock waits on a site's database: who waits, who holds them up, and which holders may be ended.

A step that changes the schema or replaces the database (a restore's DROP DATABASE, a migrate's
ALTER TABLE, a table restore) waits behind any connection holding a metadata lock on its tables, for
as long as MariaDB's lock_wait_timeout: a day by default. An idle connection inside an open
transaction holds such locks until it ends. A `LockGuard` watches the process list from a connection
of its own while the step runs: it says what holds the step up as soon as it waits, ends the site's
leftovers (connections of the site's database user from the bench's own host, when the caller says
the site is closed), and once the bound has passed ends the waiting statement itself, so the step
fails naming the blocker instead of waiting. A connection from another host or of another database
user is never ended.
"""

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from deploy_manager.core import proctable

# Seconds a step may wait before leftovers are ended: a transaction about to commit gets to commit.
GRACE = 3.0
POLL = 0.5
# Commands of server threads and idle connections: a Sleep connection holds locks only in a transaction.
IDLE = ("Sleep", "Daemon", "Binlog Dump", "Killed")
LOOPBACK = "this machine"


@dataclass(frozen=True)
class Connection:
	id: int
	user: str
	host: str
	db: str | None
	command: str
	seconds: int
	state: str
	info: str
	# None when the transaction list cannot be read (no PROCESS privilege).
	in_transaction: bool | None
	lock_wait: bool = False

	@property
	def machine(self) -> str:
		"""The host without the client's port (`127.0.0.1:53412` -> `127.0.0.1`); the socket and every
		loopback address are one machine."""
		host, _, port = self.host.rpartition(":")
		host = host if host and port.isdigit() else self.host
		return LOOPBACK if host in ("localhost", "127.0.0.1", "::1", "::ffff:127.0.0.1") else host

	@property
	def port(self) -> int | None:
		"""The client's port, for a TCP connection."""
		port = self.host.rpartition(":")[2]
		return int(port) if ":" in self.host and port.isdigit() else None

	@property
	def waiting(self) -> bool:
		state = self.state.lower()
		return self.lock_wait or (state.startswith("waiting for") and "lock" in state)

	def concerns(self, database: str) -> bool:
		return self.db == database or f"`{database}`" in self.info

	def describe(self) -> str:
		what = [self.command, f"{self.seconds} s"]
		if self.state:
			what.append(self.state)
		if self.in_transaction:
			what.append("in an open transaction")
		text = f"connection {self.id} ({self.user}@{self.host}, db {self.db or '-'}: {', '.join(what)})"
		return text + (f": {' '.join(self.info.split())[:120]}" if self.info else "")


PROCESS_LIST = (
	"SELECT p.ID, p.USER, p.HOST, p.DB, p.COMMAND, p.TIME, p.STATE, p.INFO{trx}"
	" FROM information_schema.PROCESSLIST p{join}"
)
WITH_TRANSACTIONS = (
	", t.trx_state",
	" LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID",
)


def read_process_list(connection) -> list[Connection]:
	"""Every connection this login may see, with its InnoDB transaction where the login may see those."""
	with connection.cursor() as cursor:
		try:
			cursor.execute(PROCESS_LIST.format(trx=WITH_TRANSACTIONS[0], join=WITH_TRANSACTIONS[1]))
			known = True
		except Exception as e:
			if "PROCESS" not in str(e):
				raise
			cursor.execute(PROCESS_LIST.format(trx=", NULL", join=""))
			known = False
		rows = cursor.fetchall()
	return [
		Connection(
			id=int(row[0]),
			user=row[1] or "",
			host=row[2] or "",
			db=row[3],
			command=row[4] or "",
			seconds=int(row[5] or 0),
			state=row[6] or "",
			info=_text(row[7]),
			in_transaction=(row[8] is not None) if known else None,
			lock_wait=row[8] == "LOCK WAIT",
		)
		for row in rows
	]


def _text(value) -> str:
	if isinstance(value, bytes):
		return value.decode(errors="replace")
	return value or ""


@dataclass(frozen=True)
class Holdup:
	"""A step waiting on `database`: its waiting statements and what holds them up."""

	waiters: list[Connection]
	leftovers: list[Connection]
	outside: list[Connection]

	def blockers(self) -> list[Connection]:
		return self.leftovers + self.outside


def holdup(
	connections: list[Connection],
	database: str,
	ours: set[int],
	site_user: str,
	bench_machine: str,
	step_users: set[str],
	ours_known: bool,
) -> Holdup | None:
	"""Who of the step waits for a lock on `database`, and who may hold it up.

	With `ours_known` (`ours` holds every connection of the step's processes, told by their client
	ports), the step's waiting connections wait, and any other connection using the database that is
	in a transaction or running may hold them up. Otherwise (a unix socket has no port to tell them
	by) waiters are the waiting connections of `step_users`, and only connections idle inside a
	transaction count as holders: a running statement may be the step's own. Leftovers are the site
	user's connections from the bench's own host; the rest are from outside."""
	waiters = [
		c
		for c in connections
		if c.waiting
		and c.concerns(database)
		and ((c.id in ours) if ours_known else (c.user in step_users and c.id not in ours))
	]
	if not waiters:
		return None
	using = [
		c
		for c in connections
		if c.db == database and not c.waiting and c.id not in ours and c.command not in IDLE[1:]
	]
	if not ours_known:
		using = [c for c in using if c.command == "Sleep" and c.in_transaction is not False]
	elif all(c.in_transaction is not None for c in using):
		using = [c for c in using if c.in_transaction or c.command not in IDLE]
	leftovers = [c for c in using if c.user == site_user and c.machine == bench_machine]
	return Holdup(waiters, leftovers, [c for c in using if c not in leftovers])


def client_ports(root: int) -> set[int]:
	"""Local ports of the TCP connections held by process `root` and its descendants (Linux /proc):
	the ports the database server shows in the process list's Host column."""
	family = proctable.family(root)
	sockets = set()
	for pid in family:
		try:
			for fd in os.listdir(f"/proc/{pid}/fd"):
				with contextlib.suppress(OSError):
					link = os.readlink(f"/proc/{pid}/fd/{fd}")
					if link.startswith("socket:["):
						sockets.add(link[8:-1])
		except OSError:
			continue
	ports = set()
	for table in ("/proc/net/tcp", "/proc/net/tcp6"):
		with contextlib.suppress(OSError), open(table) as f:
			for line in f.readlines()[1:]:
				fields = line.split()
				if len(fields) > 9 and fields[9] in sockets:
					ports.add(int(fields[1].rpartition(":")[2], 16))
	return ports


class LockGuard:
	"""Watches `database` from a connection of its own (`connect()`, autocommit) in a thread while a
	step runs; use as a context manager around the step. `say` gets each report as it happens (from
	the guard's thread); `reports` keeps them all for the step's log.

	The step's connections are those of this process and its children (`step_pid`), told by their
	client ports: only they are waiters, and never ended as leftovers.

	- it waits: what it waits for and every connection that may hold it up, said once each;
	- after GRACE seconds, with `end_leftovers`, the leftovers are ended (KILL CONNECTION);
	- after `bound` seconds the waiting statements are ended (KILL QUERY): the step fails, and
	  `stopped` says why, naming what held it.
	"""

	def __init__(
		self,
		connect: Callable[[], object],
		database: str,
		site_user: str,
		bound: float,
		say: Callable[[str], None] = print,
		end_leftovers: bool = True,
		ours: set[int] | None = None,
		step_pid: int | None = None,
	):
		self.connect, self.database, self.site_user, self.bound = connect, database, site_user, bound
		self.say, self.end_leftovers, self.ours = say, end_leftovers, set(ours or ())
		# The step runs in this process or in its children.
		self.step_pid = step_pid or os.getpid()
		self.reports: list[str] = []
		self.stopped = ""
		self._told: set[int] = set()
		self._ended: set[int] = set()
		self._since: dict[int, float] = {}
		self._done = threading.Event()
		self._thread: threading.Thread | None = None

	def __enter__(self):
		self.connection = self.connect()
		with self.connection.cursor() as cursor:
			cursor.execute(
				"SELECT ID, USER, HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"
			)
			own, user, host = cursor.fetchone()
		self.own = int(own)
		self.ours.add(self.own)
		# The step's statements run as the site's user or as this guard's login (a restore's admin).
		self.step_users = {self.site_user, user}
		self.machine = Connection(0, user, host, None, "", 0, "", "", None).machine
		self._thread = threading.Thread(target=self._watch, name="deploy-manager-lock-guard", daemon=True)
		self._thread.start()
		return self

	def __exit__(self, *exc):
		self._done.set()
		self._thread.join(timeout=10)
		try:
			self.connection.close()
		except Exception:
			pass  # an ended server took it: nothing to close

	def _watch(self):
		while not self._done.wait(POLL):
			try:
				self.look()
			except Exception as e:
				# A guard that cannot see must not stop the step: it says so once and stops looking.
				self._report(f"lock guard stopped watching {self.database}: {e}")
				return

	def look(self) -> Holdup | None:
		"""One look at the process list: report, end leftovers, stop the step past the bound."""
		connections = read_process_list(self.connection)
		if not any(c.waiting and c.concerns(self.database) for c in connections):
			# The usual look: nothing waits, so the process table need not be read.
			self._since.clear()
			return None
		ports = client_ports(self.step_pid)
		# The step's connections: this process's and its children's, told by their client ports.
		mapped = {c.id for c in connections if c.port in ports and c.machine == self.machine} - {self.own}
		found = holdup(
			connections,
			self.database,
			self.ours | mapped,
			self.site_user,
			self.machine,
			self.step_users,
			ours_known=bool(mapped),
		)
		if not found:
			self._since.clear()
			return None
		now = time.monotonic()
		waited = max(max(w.seconds, now - self._since.setdefault(w.id, now)) for w in found.waiters)
		new = [c for c in found.waiters + found.blockers() if c.id not in self._told]
		if new:
			self._told.update(c.id for c in new)
			self._report(
				f"waiting {waited:.0f} s for a lock on {self.database}: "
				+ "; ".join(f"waits: {w.describe()}" for w in found.waiters if w in new)
				+ "".join(f"; held by {b.describe()}" for b in found.blockers() if b in new)
				+ ("" if found.blockers() else "; no connection this login can see holds it")
			)
		if self.end_leftovers and waited >= GRACE:
			for leftover in found.leftovers:
				if leftover.id not in self._ended:
					self._ended.add(leftover.id)
					if self._kill("CONNECTION", leftover.id):
						self._report(f"ended the site's leftover {leftover.describe()}")
		if waited >= self.bound:
			held = "; ".join(b.describe() for b in found.blockers()) or "a connection this login cannot see"
			if found.outside:
				why = "a connection from outside the bench is never ended"
			elif found.leftovers and not self.end_leftovers:
				why = "the site is open: its own connections are not ended"
			else:
				why = "it could not be ended"
			self.stopped = (
				f"waited {waited:.0f} s (the bound) for a lock on {self.database} held by {held}: {why}"
			)
			for waiter in found.waiters:
				self._kill("QUERY", waiter.id)
			self._report(f"stopped the waiting step: {self.stopped}")
			self._done.set()
		return found

	def _kill(self, what: str, connection_id: int) -> bool:
		try:
			with self.connection.cursor() as cursor:
				cursor.execute(f"KILL {what} {int(connection_id)}")
			return True
		except Exception as e:
			self._report(f"could not end {what.lower()} {connection_id}: {e}")
			return False

	def _report(self, text: str):
		self.reports.append(text)
		self.say(text)
