"""
The stdlib peer for HTTP hello: http.server's ThreadingHTTPServer speaking
HTTP/1.1 (keep-alive) with TCP_NODELAY, on 127.0.0.1 until SIGTERM.

    python stdlib_http.py PORT
"""

from __future__ import annotations

import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"Hello World"


class Hello(BaseHTTPRequestHandler):
    """
    Answer every GET with Hello World, keeping the connection open.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    """
    A deeper listen queue than the default 5, and threads that do not keep
    the process alive.
    """

    request_queue_size = 1024
    daemon_threads = True


def main() -> None:
    server = Server(("127.0.0.1", int(sys.argv[1])), Hello)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


if __name__ == "__main__":
    main()
