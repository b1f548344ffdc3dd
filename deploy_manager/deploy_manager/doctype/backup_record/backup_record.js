// Copyright (c) 2026, deploy_manager developers and contributors
// For license information, please see license.txt

frappe.ui.form.on("Backup Record", {
	refresh(frm) {
		if (["Deleted", "Missing"].includes(frm.doc.status)) return;
		const check = (drill) =>
			frappe
				.xcall("deploy_manager.api.check_backup", { name: frm.doc.name, drill })
				.then((r) => frappe.show_alert({ message: r.message, indicator: r.queued ? "blue" : "orange" }));
		frm.add_custom_button(__("Verify again"), () => check(0));
		if (frm.doc.status === "Verified") {
			frm.add_custom_button(__("Restore drill"), () => check(1));
		}
		frappe.realtime.off("deploy_manager_backup");
		frappe.realtime.on("deploy_manager_backup", (data) => {
			if (data.name === frm.doc.name) frm.reload_doc();
		});
	},
});
