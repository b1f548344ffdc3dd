// Copyright (c) 2026, deploy_manager developers and contributors
// For license information, please see license.txt

const BACKUP_INDICATORS = {
	"Not Verified": "gray",
	Verified: "green",
	Corrupt: "red",
	Missing: "red",
	Unverifiable: "orange",
	Deleted: "gray",
};

frappe.listview_settings["Backup Record"] = {
	add_fields: ["status"],
	onload(listview) {
		listview.page.add_inner_button(__("Back up now"), () => {
			frappe
				.xcall("deploy_manager.api.backup_now")
				.then((r) => frappe.show_alert({ message: r.message, indicator: r.queued ? "blue" : "orange" }));
		});
		frappe.realtime.on("deploy_manager_backup", (data) => {
			frappe.show_alert({ message: `${data.name}: ${__(data.status)}`, indicator: data.status === "Verified" ? "green" : "red" });
			listview.refresh();
		});
	},
	get_indicator(doc) {
		return [__(doc.status), BACKUP_INDICATORS[doc.status] || "gray", "status,=," + doc.status];
	},
};
