"""What the real rq workers of test_checks_workers run: a stand-in for Frappe's own job runner.

Frappe enqueues every job as `frappe.utils.background_jobs.execute_job` with these keyword arguments.
"""

import time


def execute_job(site, method, event, job_name, kwargs, user=None, is_async=True, retry=0):
	if method == "sleep":
		time.sleep(kwargs["seconds"])
		return
	raise RuntimeError(f"{job_name} failed on {site}")
