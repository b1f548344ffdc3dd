"""Where the server's own requests may go: never to link-local or cloud metadata addresses, where a
URL typed into Settings would make the site fetch its host's credentials. Checked on every hop, so
a redirect cannot lead there either; secrets go to https or to this machine only."""

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

REFUSED_NETWORKS = tuple(
	ipaddress.ip_network(net)
	for net in (
		"169.254.0.0/16",  # IPv4 link-local: AWS, GCP, Azure and OpenStack metadata at .169.254
		"fe80::/10",  # IPv6 link-local
		"fd00:ec2::254/128",  # AWS metadata over IPv6
		"100.100.100.200/32",  # Alibaba Cloud metadata
		"0.0.0.0/8",
	)
)
REFUSED_NAMES = ("metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal")
LOOPBACK_NAMES = ("localhost",)


class RefusedAddress(requests.RequestException):
	"""A request to an address the server never asks."""


def is_loopback(host: str | None) -> bool:
	name = (host or "").lower().rstrip(".")
	if name in LOOPBACK_NAMES or name.endswith(".localhost"):
		return True
	try:
		return ipaddress.ip_address(name.strip("[]")).is_loopback
	except ValueError:
		return False


def refusal(url: str, resolve: bool = True) -> str:
	"""Why `url` may not be asked, or "" when it may. Without `resolve`, only names and literal
	addresses are judged (for Settings, saved while a name may not resolve yet)."""
	host = (urlsplit(url).hostname or "").lower().rstrip(".")
	if host in REFUSED_NAMES:
		return f"{host} is a cloud metadata service"
	try:
		addresses = [ipaddress.ip_address(host)]
	except ValueError:
		if not resolve or not host:
			return ""
		try:
			addresses = [
				ipaddress.ip_address(info[4][0].split("%")[0]) for info in socket.getaddrinfo(host, None)
			]
		except OSError:
			return ""  # Not resolving is the request's own failure to report.
	for address in addresses:
		mapped = getattr(address, "ipv4_mapped", None) or address
		if any(mapped in network for network in REFUSED_NETWORKS):
			return f"{host} is {mapped}, a link-local or metadata address"
	return ""


def link_refusal(url: str) -> str:
	"""Why `url` may not be stored as a link that a browser opens, or "" when it may: http or https
	with a host, and no whitespace or control character anywhere (browsers drop tabs and newlines
	inside a URL and trim the rest, so `java\tscript:` and ` javascript:` are script URLs)."""
	if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
		return "it holds whitespace or control characters"
	parts = urlsplit(url)
	if parts.scheme.lower() not in ("http", "https"):
		return f"its scheme is {parts.scheme.lower() + ':' if parts.scheme else 'missing'}, not http or https"
	if not parts.hostname:
		return "it names no host"
	return ""


class GuardedAdapter(HTTPAdapter):
	def send(self, request, *args, **kwargs):
		if why := refusal(request.url):
			raise RefusedAddress(f"refused: {why}", request=request)
		return super().send(request, *args, **kwargs)


def session(**adapter_options) -> requests.Session:
	"""A requests session that refuses link-local and metadata addresses, redirects included."""
	guarded = requests.Session()
	for scheme in ("http://", "https://"):
		guarded.mount(scheme, GuardedAdapter(**adapter_options))
	return guarded
