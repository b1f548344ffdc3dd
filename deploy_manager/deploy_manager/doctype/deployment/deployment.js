// Copyright (c) 2026, deploy_manager developers and contributors
// For license information, please see license.txt

frappe.ui.form.on("Deployment", {
	refresh(frm) {
		if (frm.is_new() || frm.doc.status === "In Progress") return;
		frm.add_custom_button(__("Verify now"), () => {
			frappe
				.xcall("deploy_manager.api.verify_now", { deployment: frm.doc.name })
				.then((r) => frappe.show_alert({ message: r.message, indicator: r.queued ? "blue" : "orange" }));
		});
		// The job pushes its verdict when done; the form then shows the new status and verdict.
		frappe.realtime.off("deploy_manager_verified");
		frappe.realtime.on("deploy_manager_verified", (data) => {
			if (data.deployment !== frm.doc.name) return;
			frappe.show_alert({
				message: __("Verification {0}: {1}", [data.name, __(data.verdict)]),
				indicator: ["Confirm", "Fix forward"].includes(data.verdict) ? "green" : "red",
			});
			frm.reload_doc();
		});
	},
});
