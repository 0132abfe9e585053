"""A plain webhook agent for the gateway's `http` upstream tests (standard library only).

    python webhook_agent.py PORT

POST /json    -> one JSON result: {"sum": a + b, "headers": <the request's headers>}
POST /ndjson  -> NDJSON: two progress lines, an artifact line, then {"result": …}
POST /broken  -> 500 with a text body
POST /garbage -> 200 with a body that is not JSON
Prints "listening http://127.0.0.1:PORT" once it accepts connections.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body: bytes, ctype="application/json", chunked=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not chunked:
            self.wfile.write(body)

    def _chunk(self, data: bytes):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.path == "/json":
            out = {"sum": body.get("a", 0) + body.get("b", 0), "headers": headers}
            self._send(200, json.dumps(out).encode())
        elif self.path == "/ndjson":
            self._send(200, b"", "application/x-ndjson", chunked=True)
            for pct in (50, 100):
                self._chunk(json.dumps({"progress": {"stage": f"half-{pct}", "pct": pct, "message": f"{pct}%"}}).encode() + b"\n")
                time.sleep(0.02)
            self._chunk(json.dumps({"artifact": {"name": "notes.txt", "media_type": "text/plain", "text": "n"}}).encode() + b"\n")
            self._chunk(json.dumps({"result": {"done": True, "run": headers.get("x-run-id")}}).encode() + b"\n")
            self._chunk(b"")
        elif self.path == "/broken":
            self._send(500, b"upstream exploded", "text/plain")
        else:
            self._send(200, b"<html>not json</html>", "text/html")


def main() -> int:
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening http://127.0.0.1:{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
