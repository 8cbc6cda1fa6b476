"""A tiny HTTP service for the cluster smoke test.

GET /            -> "<hostname>\n"        (which pod answered)
GET /burn?ms=N   -> spins the CPU for N ms (at most 1000), so an HPA has load to see
"""

import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/burn":
            ms = min(int(parse_qs(url.query).get("ms", ["100"])[0]), 1000)
            end = time.monotonic() + ms / 1000
            while time.monotonic() < end:
                pass
        body = (socket.gethostname() + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
