"""The quickstart's example upstream: answers every request with a JSON echo
of its method, path and the identity headers the gateway sent (X-User-*).

Usage: /usr/bin/python3 echo_upstream.py [HOST:]PORT   (default 127.0.0.1:9001)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EchoHandler(BaseHTTPRequestHandler):
    server_version = "echo-upstream"

    def _echo(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = {
            "method": self.command,
            "path": self.path,
            "headers": {
                k: v for k, v in self.headers.items() if k.lower().startswith("x-user-")
            },
        }
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _echo

    def log_message(self, fmt, *args):
        sys.stderr.write("upstream: %s %s\n" % (self.address_string(), fmt % args))


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9001"
    host, _, port = addr.rpartition(":")
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), EchoHandler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
