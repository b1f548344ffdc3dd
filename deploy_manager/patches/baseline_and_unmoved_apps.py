import frappe


def execute():
	"""Records written before the Baseline status and before an app's move was judged by its commit
	alone: Install records left Awaiting Verification forever, and apps whose commit did not move but
	whose version was read stale (from a process that imported the code before a checkout) counted as
	moved."""
	frappe.db.sql(
		"""update `tabDeployment` set status = 'Baseline'
		where source = 'Install' and status = 'Awaiting Verification'"""
	)
	frappe.db.sql(
		"""update `tabDeployment App` set changed = 0
		where ifnull(from_commit, '') != '' and from_commit = to_commit"""
	)
	frappe.db.sql(
		"""update `tabDeployment` d set changed = exists (
			select 1 from `tabDeployment App` a where a.parent = d.name and a.parenttype = 'Deployment' and a.changed
		) or exists (
			select 1 from `tabDeployment Patch` p where p.parent = d.name and p.parenttype = 'Deployment'
		)"""
	)
