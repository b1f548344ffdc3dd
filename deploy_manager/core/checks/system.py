"""The machine the site runs on: the guide's "Resources" row (disk full, memory)."""

import shutil
from pathlib import Path

from deploy_manager.core.checks import FAIL, INSIDE, PASS, WARN, CheckResult, Target, register

# Free space below these fractions of a disk: a backup or a migrate may no longer fit.
DISK_WARN, DISK_FAIL = 0.15, 0.05
MEMORY_WARN, MEMORY_FAIL = 0.10, 0.03


@register(
	"Disk space",
	"resources",
	"minor",
	looks=INSIDE,
	fails_when=f"under {DISK_FAIL:.0%} free where the site or its backups live (warns under {DISK_WARN:.0%})",
)
def disk(target: Target) -> CheckResult:
	"""Free space on each disk holding a path in `extra["paths"]` (site folder, backups)."""
	paths = target.extra.get("paths") or []
	if not paths:
		return CheckResult(WARN, "no paths given to check")
	path, fraction, free = min((_disk_free(p) for p in paths), key=lambda d: d[1])
	return _remaining(
		fraction, DISK_WARN, DISK_FAIL, f"{_gib(free)} free ({fraction:.0%}) on the disk of {path}"
	)


@register(
	"Memory",
	"resources",
	"minor",
	looks=INSIDE,
	fails_when=f"under {MEMORY_FAIL:.0%} available (warns under {MEMORY_WARN:.0%})",
)
def memory(target: Target) -> CheckResult:
	meminfo = _meminfo(Path(target.extra.get("meminfo") or "/proc/meminfo"))
	total, available = meminfo.get("MemTotal"), meminfo.get("MemAvailable")
	if not total or available is None:
		return CheckResult(WARN, "memory figures are not available on this system")
	fraction = available / total
	message = f"{_gib(available)} of {_gib(total)} memory available ({fraction:.0%})"
	return _remaining(fraction, MEMORY_WARN, MEMORY_FAIL, message)


def _remaining(fraction: float, warn: float, fail: float, message: str) -> CheckResult:
	"""A resource that runs out: fail under `fail`, warn under `warn`."""
	status = FAIL if fraction < fail else WARN if fraction < warn else PASS
	return CheckResult(status, message, value=f"{fraction:.0%}", threshold=f"{warn:.0%}")


def _disk_free(path: str) -> tuple[str, float, int]:
	usage = shutil.disk_usage(path)
	return path, usage.free / usage.total, usage.free


def _meminfo(path: Path) -> dict[str, int]:
	"""/proc/meminfo in bytes; empty where there is no such file."""
	try:
		lines = path.read_text().splitlines()
	except OSError:
		return {}
	values = {}
	for line in lines:
		key, _, rest = line.partition(":")
		parts = rest.split()
		if parts and parts[0].isdigit():
			values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
	return values


def _gib(size: int) -> str:
	return f"{size / 2**30:.1f} GiB"
