# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

from frappe.model.document import Document

from deploy_manager.deploy_manager.doctype.deployment.deployment import Deployment


class BenchDeployment(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from deploy_manager.deploy_manager.doctype.bench_deployment_site.bench_deployment_site import (
			BenchDeploymentSite,
		)
		from deploy_manager.deploy_manager.doctype.deployment_app.deployment_app import DeploymentApp

		apps: DF.Table[DeploymentApp]
		canary: DF.Data | None
		finished_at: DF.Datetime | None
		log: DF.Code | None
		platform: DF.Literal["Bench", "Docker", "Kubernetes"]
		sites: DF.Table[BenchDeploymentSite]
		started_at: DF.Datetime | None
		status: DF.Literal["In Progress", "Completed", "Stopped"]
		strategy: DF.Literal["Canary", "Rolling", "Blue-Green"]
		triggered_by: DF.Data | None
	# end: auto-generated types

	# The same log and apps table as a Deployment's.
	add_log = Deployment.add_log
	set_apps = Deployment.set_apps
