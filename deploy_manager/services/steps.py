"""The steps of one deploy or rollback: each timed and logged on its Deployment, and what the steps so
far have done (the database touched or not), which decides how a failure is recovered from."""

import contextlib
import time

import frappe

from deploy_manager.services import closing, lock_guard
from deploy_manager.services.processes import OUTPUT_KEPT


class Steps:
	"""Runs the steps of one Deployment (`doc`, already inserted) and keeps its log."""

	def __init__(self, doc):
		self.doc = doc
		self.current = ""
		# Once a step that writes to the database has begun, only a restore undoes it.
		self.database_touched = False
		# What the lock guard said during the step that failed, for its log.
		self.lock_reports: list[str] = []

	def step(self, title: str, fn, touches_database: bool = False):
		"""Run one step; one that writes to the database runs under the lock guard (the site is closed
		by then): it never waits for a lock longer than the bound without saying so."""
		self.current = title
		self.database_touched = self.database_touched or touches_database
		closing.note_step(title, self.database_touched)
		self.lock_reports = []
		started = time.monotonic()
		with lock_guard.guarded(title) if touches_database else contextlib.nullcontext() as guard:
			try:
				output = fn()
			finally:
				self.lock_reports = guard.reports if guard else []
		took = time.monotonic() - started
		text = output if isinstance(output, str) else ""
		self.doc.add_lock_waits(title, self.lock_reports)
		self.doc.add_log(
			f"{title}: done in {took:.1f}s" + (f"\n{text[-OUTPUT_KEPT:]}" if text.strip() else "")
		)
		self.doc.save(ignore_permissions=True)
		frappe.db.commit()
		return output

	def record_failure(self, reason: str, error: BaseException | None = None, more: str = "", **fields):
		"""Store the failure (and `fields`), with the failed command's output; when the database is what
		failed, connect again once and retry. The reason is printed either way."""
		for attempt in range(2):
			try:
				if attempt:
					frappe.db.close()
					frappe.connect(site=frappe.local.site)
				self.doc.reload()
				self.doc.update(fields)
				self.doc.add_lock_waits(self.current, self.lock_reports)
				if output := getattr(error, "output", ""):
					self.doc.add_log(f"{self.current} output:\n{output}")
				self.doc.fail(reason, log=reason + (f"\n{more}" if more else ""))
				self.doc.save(ignore_permissions=True)
				frappe.db.commit()
				return
			except ValueError:
				raise  # the lifecycle refused: no connection to retry
			except Exception:
				self.doc.failure_reason = reason
