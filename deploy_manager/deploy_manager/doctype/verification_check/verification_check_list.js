// Copyright (c) 2026, deploy_manager developers and contributors
// For license information, please see license.txt

const VERDICT_INDICATORS = {
	Confirm: "green",
	"Fix forward": "yellow",
	"Consider rollback": "orange",
	Rollback: "red",
	"Rollback immediately": "red",
};
const CHECK_STATUS_INDICATORS = { Queued: "gray", Running: "blue", Completed: "green", Error: "red" };

frappe.listview_settings["Verification Check"] = {
	add_fields: ["status", "verdict"],
	get_indicator(doc) {
		if (doc.verdict) {
			return [__(doc.verdict), VERDICT_INDICATORS[doc.verdict], "verdict,=," + doc.verdict];
		}
		return [__(doc.status), CHECK_STATUS_INDICATORS[doc.status] || "gray", "status,=," + doc.status];
	},
};
