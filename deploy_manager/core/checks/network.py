"""The guide's "Network: DNS, firewall" and "Dependencies: APIs": the site's name resolves and the
outside services it calls answer.

The facts come gathered in `Target.extra["network"]`: `host` (the site's host name) and
`external_urls` (the services to reach). A gathering that failed comes as the exception itself.
"""

import ipaddress
import socket
import threading
import time

import requests

from deploy_manager.core import outbound
from deploy_manager.core.checks import FAIL, OUTSIDE, PASS, WARN, CheckResult, Target, gathered, register


@register(
	"DNS",
	"network",
	"minor",
	looks=OUTSIDE,
	fails_when="the site's host name does not resolve (`*.localhost` is loopback, RFC 6761)",
)
def dns(target: Target) -> CheckResult:
	facts = gathered(target, "network", "the network settings", plural=True)
	if isinstance(facts, CheckResult):
		return facts
	host = facts["host"]
	if not host:
		return CheckResult(WARN, "the site has no host name to resolve")
	name = host.lower().rstrip(".")
	if name == "localhost" or name.endswith(".localhost"):
		return CheckResult(PASS, f"{host} is loopback (RFC 6761): nothing to look up", "loopback")
	try:
		ipaddress.ip_address(name)
	except ValueError:
		pass
	else:
		return CheckResult(PASS, f"{host} is an IP address: nothing to look up", host)
	try:
		infos = socket.getaddrinfo(name, None)
	except OSError as e:
		return CheckResult(FAIL, f"{host} does not resolve: {e.strerror or e}")
	addresses = sorted({info[4][0] for info in infos})
	return CheckResult(PASS, f"{host} resolves to {', '.join(addresses)}", addresses[0])


@register(
	"External services",
	"network",
	"minor",
	looks=OUTSIDE,
	fails_when="a URL listed in Settings does not answer (5xx, refused, timeout)",
	timeout=15,
)
def external_services(target: Target) -> CheckResult:
	facts = gathered(target, "network", "the network settings", plural=True)
	if isinstance(facts, CheckResult):
		return facts
	urls = facts["external_urls"]
	if not urls:
		return CheckResult(PASS, "none configured", "0")
	failures = [f"{url} ({why})" for url, why in _unanswered(urls, target.request_timeout).items()]
	value = f"{len(urls) - len(failures)} of {len(urls)} answer"
	if failures:
		return CheckResult(FAIL, "not answering: " + ", ".join(failures), value)
	return CheckResult(PASS, f"all {len(urls)} answer", value)


def _unanswered(urls: list[str], timeout: float) -> dict[str, str]:
	"""URL -> why it did not answer, for those that did not.

	All are asked at once, so a hanging one does not delay the others. Daemon threads rather than a
	thread pool: a pool's threads are joined at exit, so a server that never stops sending would keep
	the process alive; these are abandoned at the deadline instead.
	"""
	reasons: dict[str, str] = {}
	threads = [threading.Thread(target=_ask, args=(url, timeout, reasons), daemon=True) for url in urls]
	for thread in threads:
		thread.start()
	# The timeout bounds connecting and each read; twice it is all an answering service needs.
	deadline = time.monotonic() + 2 * timeout
	for thread in threads:
		thread.join(max(0.0, deadline - time.monotonic()))
	unanswered = {}
	for url in urls:
		if url not in reasons:
			unanswered[url] = f"still no complete answer after {2 * timeout:g}s"
		elif reasons[url]:
			unanswered[url] = reasons[url]
	return unanswered


def _ask(url: str, timeout: float, reasons: dict):
	try:
		with outbound.session() as session:
			response = session.get(url, timeout=timeout)
	except requests.Timeout:
		reasons[url] = f"no answer within {timeout:g}s"
	except Exception as e:
		# Raised in this thread it would be lost, and the URL reported as merely slow.
		reasons[url] = _cause(e)
	else:
		# A 4xx still means the service is up and talking; a 5xx means it is broken.
		reasons[url] = f"HTTP {response.status_code}" if response.status_code >= 500 else ""


def _cause(error: BaseException) -> str:
	"""The socket's own words (connection refused, name not known) from under requests' wrappers."""
	cause: BaseException | None = error
	while cause is not None:
		if isinstance(cause, OSError) and cause.strerror:
			return cause.strerror
		cause = cause.__cause__ or cause.__context__
	return str(error)
