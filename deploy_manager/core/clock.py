"""One clock for every comparison of times: the site's.

Frappe keeps naive datetimes in the site's time zone (System Settings; Asia/Kolkata when none is
set), files carry POSIX timestamps, RQ keeps naive UTC, and the machine's own clock runs in the
server's zone, which may be hours away from the site's. Every time read from another source is turned
into the site's time here before it is compared with a time Frappe keeps.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class SiteClock:
	zone: str

	@property
	def _tz(self) -> ZoneInfo:
		return ZoneInfo(self.zone)

	def now(self) -> datetime:
		return datetime.now(self._tz).replace(tzinfo=None)

	def from_timestamp(self, timestamp: float) -> datetime:
		"""A file's mtime (or any POSIX time) as the site's naive time."""
		return datetime.fromtimestamp(timestamp, self._tz).replace(tzinfo=None)

	def from_utc(self, moment: datetime) -> datetime:
		"""A naive UTC time (as RQ keeps them) as the site's naive time."""
		return moment.replace(tzinfo=timezone.utc).astimezone(self._tz).replace(tzinfo=None)

	def to_utc(self, moment: datetime) -> datetime:
		"""The site's naive time as naive UTC, to compare with RQ's."""
		return moment.replace(tzinfo=self._tz).astimezone(timezone.utc).replace(tzinfo=None)
