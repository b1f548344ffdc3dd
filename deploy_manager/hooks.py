app_name = "deploy_manager"
app_title = "Deploy Manager"
app_publisher = "deploy_manager developers"
app_description = "A Frappe site that records, backs up, verifies and rolls back its own deployments"
app_email = "developers@deploy-manager.invalid"
app_license = "MIT"
required_apps = []

export_python_type_annotations = True

after_install = [
	"deploy_manager.services.recording.after_install",
	"deploy_manager.services.desk.sync_blocks",
]
before_uninstall = "deploy_manager.services.desk.remove_blocks"

# Every `bench migrate` becomes a Deployment record.
before_migrate = ["deploy_manager.services.recording.before_migrate"]
after_migrate = [
	"deploy_manager.services.recording.after_migrate",
	"deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings.fill_defaults",
	"deploy_manager.services.desk.sync_blocks",
]

scheduler_events = {
	"hourly": [
		"deploy_manager.services.recording.settle_finished_migrates",
		"deploy_manager.services.monitoring.verify_on_schedule",
	],
	"daily": ["deploy_manager.services.backups.keep_on_schedule"],
	"weekly_long": ["deploy_manager.services.backups.drill_on_schedule"],
	"cron": {"*/5 * * * *": ["deploy_manager.services.monitoring.monitor_deployments"]},
}
