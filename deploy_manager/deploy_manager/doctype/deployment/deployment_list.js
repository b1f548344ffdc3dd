// Copyright (c) 2026, deploy_manager developers and contributors
// For license information, please see license.txt

const DEPLOYMENT_INDICATORS = {
	"In Progress": "blue",
	Failed: "red",
	"Awaiting Verification": "orange",
	Verifying: "blue",
	Monitoring: "cyan",
	Confirmed: "green",
	"Rollback Recommended": "red",
	"Rolled Back": "gray",
	Baseline: "gray",
};

frappe.listview_settings["Deployment"] = {
	add_fields: ["status", "changed"],
	get_indicator(doc) {
		return [__(doc.status), DEPLOYMENT_INDICATORS[doc.status] || "gray", "status,=," + doc.status];
	},
};
