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
	onload(listview) {
		listview.page.add_inner_button(__("Verify now"), () => {
			frappe
				.xcall("deploy_manager.api.verify_now")
				.then((r) => frappe.show_alert({ message: r.message, indicator: r.queued ? "blue" : "orange" }));
		});
		// The finished verification is a new row: show it.
		frappe.realtime.on("deploy_manager_verified", () => listview.refresh());
	},
	get_indicator(doc) {
		if (doc.verdict) {
			return [__(doc.verdict), VERDICT_INDICATORS[doc.verdict], "verdict,=," + doc.verdict];
		}
		return [__(doc.status), CHECK_STATUS_INDICATORS[doc.status] || "gray", "status,=," + doc.status];
	},
};
