#!/usr/bin/env python3
"""adapter.py - runs an unchanged AWS Lambda handler behind a Sluice push target
(Python 3.9+, standard library only):

    python3 adapter.py handler.py [port]     (or a module name on sys.path: handler)

Each POST's JSON body is the event passed to handler(event, context); the return
value is the answer (200, JSON), so a returned {"batchItemFailures": [...]} reaches
the broker; an exception answers 500.
"""
import importlib
import importlib.util
import json
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def load(name):
    if not name.endswith(".py"):
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(os.path.basename(name)[:-3], name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Context:
    """The part of Lambda's context object handlers use."""

    def __init__(self, function_name, timeout_ms):
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_version = "$LATEST"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: python3 adapter.py handler.py [port]")
    handler = load(sys.argv[1]).handler
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8080
    timeout_ms = int(os.environ.get("TIMEOUT_MS", "30000"))
    name = os.environ.get("FUNCTION_NAME", os.path.basename(sys.argv[1]).removesuffix(".py"))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length

        def answer(self, status, value):
            body = (value if isinstance(value, str) else json.dumps(value)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = json.loads(raw)
            except ValueError as e:
                return self.answer(400, {"errorType": "InvalidRequestContentException",
                                         "errorMessage": str(e)})
            try:  # serialised here: a result JSON cannot hold is the handler's error too
                result = json.dumps(handler(event, Context(name, timeout_ms)))
            except Exception as e:  # what Lambda reports as a function error
                return self.answer(500, {"errorType": type(e).__name__, "errorMessage": str(e)})
            self.answer(200, result)

    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), port), Handler)
    print("listening on http://%s:%d" % server.server_address[:2], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
