"""A real HTTP server on loopback whose answers the test chooses."""

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serve(routes: dict):
	"""routes: path -> (status, body) or (status, body, headers), a number of seconds to hang before answering 200, or a function
	called for each request that returns (status, body).

	The server keeps each request's Host header in `hosts` and (method, path, headers) in `requests`.
	"""

	class Handler(BaseHTTPRequestHandler):
		def do_GET(self):
			self.server.requests.append((self.command, self.path, dict(self.headers)))
			route = routes.get(self.path.split("?")[0], (404, "not found"))
			if callable(route):
				route = route()
			if isinstance(route, int | float):
				time.sleep(route)
				route = (200, {"message": "pong"})
			status, body, *headers = route
			data = (json.dumps(body) if isinstance(body, dict) else body).encode()
			self.send_response(status)
			for name, value in (headers[0] if headers else {}).items():
				self.send_header(name, value)
			self.send_header("Content-Length", str(len(data)))
			self.end_headers()
			if self.command != "HEAD":
				self.wfile.write(data)
			self.server.hosts.append(self.headers.get("Host"))

		do_POST = do_HEAD = do_GET

		def log_message(self, *args):
			pass

	server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
	server.daemon_threads = True
	server.hosts = []
	server.requests = []
	thread = threading.Thread(target=server.serve_forever, daemon=True)
	thread.start()
	try:
		yield server, f"http://127.0.0.1:{server.server_address[1]}"
	finally:
		server.shutdown()
		server.server_close()
