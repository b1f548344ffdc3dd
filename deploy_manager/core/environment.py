"""Where this code runs: the platform and who is running it. Read from the process, not from frappe."""

import getpass
import os
import socket
from pathlib import Path


def detect_platform() -> str:
	if os.environ.get("KUBERNETES_SERVICE_HOST"):
		return "Kubernetes"
	if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
		return "Docker"
	return "Bench"


def hostname() -> str:
	return socket.gethostname()


def operator() -> str:
	"""`user@host` of the process, what an operator recognises in a log."""
	try:
		user = getpass.getuser()
	except (KeyError, OSError):
		user = str(os.getuid())
	return f"{user}@{hostname()}"
