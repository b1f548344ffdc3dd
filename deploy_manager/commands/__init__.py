"""`bench --site SITE deploy-manager ...`: parse arguments, open the site, call a service. One
module per subject; what they share (sites, output) is in `sites`.

Imported on every bench call, so the services are imported inside the commands.
"""

import click

from deploy_manager.commands.backup import backup
from deploy_manager.commands.deploy import deploy_command, preflight_command
from deploy_manager.commands.rollback import candidates, rollback_command
from deploy_manager.commands.verify import status, verify
from deploy_manager.commands.watchdog import watchdog


@click.group("deploy-manager")
def deploy_manager():
	"""Deployments of this site: record, back up, verify, roll back."""


for command in (
	status,
	verify,
	backup,
	candidates,
	rollback_command,
	preflight_command,
	deploy_command,
	watchdog,
):
	deploy_manager.add_command(command)

commands = [deploy_manager]
