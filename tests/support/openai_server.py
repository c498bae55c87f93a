"""A small OpenAI-compatible chat completions server for tests: answers what the test scripts,
records every request it got, and stops on demand.

In-process: ``with OpenAiServer(respond) as server: ... server.api_base ...``. As a process:
``python -m tests.support.openai_server --content '{"summary": "..."}'`` prints its port (a
free one) on the first line and answers every completion with that content until killed."""
from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Respond = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """Everything the messages of the request said, as one string."""
        return json.dumps(self.body.get("messages", []))


def completion(content: str = "", tool_calls: list[dict[str, Any]] | None = None,
               model: str = "fake-model") -> dict[str, Any]:
    """An OpenAI chat completion answering ``content`` (and asking for ``tool_calls``)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}


def tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


class OpenAiServer:
    """Serves POST */chat/completions on 127.0.0.1 (a free port) from a thread.

    ``respond`` turns a request body into a completion (see ``completion``); ``delay_s``
    holds every answer back that long (a slow model)."""

    def __init__(self, respond: Respond, *, delay_s: float = 0.0) -> None:
        self.respond = respond
        self.delay_s = delay_s
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                           body))
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if server.delay_s:
                    time.sleep(server.delay_s)
                try:
                    self._send(200, server.respond(body))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-server", daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def serve_forever(self) -> None:
        """Serve in the calling thread (the process form) until stop() or an interrupt."""
        self._httpd.serve_forever()

    def start(self) -> OpenAiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="An OpenAI-compatible server answering every completion alike.")
    parser.add_argument("--content", default='{"summary": "ok", "evidence": [], "recommendations": []}')
    args = parser.parse_args()
    server = OpenAiServer(lambda body: completion(args.content))
    print(server.port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
