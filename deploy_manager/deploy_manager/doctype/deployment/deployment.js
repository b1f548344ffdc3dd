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
		if (["Bench Migrate", "Deploy Command", "Rollback"].includes(frm.doc.source) && frm.doc.status !== "Rolled Back") {
			frm.add_custom_button(__("Rollback plan"), () => {
				frappe.xcall("deploy_manager.api.rollback_plan", { deployment: frm.doc.name }).then((c) => {
					const problems = c.restorable ? "" : `<p class="text-danger">${__("Not restorable")}: ${frappe.utils.escape_html(c.problems.join("; "))}</p>`;
					frappe.msgprint({
						title: __("Rollback plan: {0}", [c.name]),
						wide: true,
						message: `${problems}<p>${__("Database from {0}, taken {1}", [c.backup, c.backup_taken_at])}</p>
							<pre>${frappe.utils.escape_html(c.plan)}</pre>
							<p>${__("Run on the bench")}:</p><pre>${frappe.utils.escape_html(c.command)}</pre>`,
					});
				});
			});
		}
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
