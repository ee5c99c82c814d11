"""A fault-injecting HTTP reverse proxy of the tests' own making, in front of a real
OpenAI-compatible server (vLLM's, started by ``tests/vllm_server.py``).

It runs its own asyncio loop in a thread, speaks enough HTTP/1.1 for the openai client
(keep-alive, Content-Length bodies; chunked upstream replies are re-framed), and per request:

- waits ``latency_s`` (injected latency);
- asks ``policy(ident, n)`` for a fault, where ``ident`` identifies what was asked (a hash of a
  chat request's messages) and ``n`` counts how often that ident has arrived (1 = first):
  ``Fault("429", retry_after=s)``, ``Fault("500")``, ``Fault("stall", seconds=s)`` (no answer
  for s seconds, then the connection closes), ``Fault("drop")`` (the connection closes with no
  answer), or None to forward;
- counts what it saw: ``received[ident]``, ``forwarded[ident]``, ``answered[ident]`` (a 200
  from upstream written back to the client), the largest number of chat requests in flight
  at once, and the time each request arrived.

``upstream=None`` answers chat requests itself with a fixed completion (benchmarks only: it
measures the client without the server's compute).
"""

import asyncio
import hashlib
import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    kind: str  # 429 | 500 | stall | drop
    retry_after: float | None = None
    seconds: float = 0.0


def ident_of(messages: list[dict]) -> str:
    """What a chat request asks, independent of how the client serialised it."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class FaultProxy:
    def __init__(self, upstream: str | None, latency_s: float = 0.0, policy=None):
        """``upstream``: "host:port" of the real server, or None (canned answers)."""
        self.upstream = upstream
        self.latency_s = latency_s
        self.policy = policy or (lambda ident, n: None)
        self.received, self.forwarded, self.answered = Counter(), Counter(), Counter()
        self.faults = Counter()
        self.arrivals = defaultdict(list)  # ident -> monotonic arrival times
        self.auth_headers = Counter()
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server = None
        self.port = None

    # -- lifecycle --

    def start(self) -> "FaultProxy":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result()
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close():
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        with self._lock:
            for c in (self.received, self.forwarded, self.answered, self.faults, self.auth_headers):
                c.clear()
            self.arrivals.clear()
            self.max_in_flight = 0

    # -- HTTP --

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line.strip():
                    break
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers = await _read_headers(reader)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self._serve(method, path, headers, body, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _serve(self, method, path, headers, body, writer) -> bool:
        """Answer one request; False closes the connection."""
        chat = path.rstrip("/").endswith("/chat/completions")
        ident = ident_of(json.loads(body)["messages"]) if chat else path
        with self._lock:
            self.received[ident] += 1
            n = self.received[ident]
            self.arrivals[ident].append(time.monotonic())
            if "authorization" in headers:
                self.auth_headers[headers["authorization"]] += 1
            if chat:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            fault = self.policy(ident, n) if chat else None
            if fault is not None:
                with self._lock:
                    self.faults[fault.kind] += 1
                if fault.kind == "drop":
                    return False
                if fault.kind == "stall":
                    await asyncio.sleep(fault.seconds)
                    return False
                status = int(fault.kind)
                extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                error = {"error": {"message": f"injected {status}", "type": "injected", "code": status}}
                await _respond(writer, status, json.dumps(error).encode(), extra)
                return True
            with self._lock:
                self.forwarded[ident] += 1
            status, resp_headers, resp_body = await self._forward(method, path, headers, body, chat)
            await _respond(
                writer, status, resp_body, {"Content-Type": resp_headers.get("content-type", "application/json")}
            )
            if chat and status == 200:
                with self._lock:
                    self.answered[ident] += 1
            return True
        finally:
            if chat:
                with self._lock:
                    self.in_flight -= 1

    async def _forward(self, method, path, headers, body, chat):
        if self.upstream is None:
            return _canned(body) if chat else (404, {}, b'{"error": "canned proxy"}')
        host, port = self.upstream.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            keep = {k: v for k, v in headers.items() if k in ("content-type", "authorization", "accept")}
            head = [
                f"{method} {path} HTTP/1.1",
                f"Host: {self.upstream}",
                f"Content-Length: {len(body)}",
                "Connection: close",
                *(f"{k}: {v}" for k, v in keep.items()),
            ]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            resp_headers = await _read_headers(reader)
            if resp_headers.get("transfer-encoding", "").lower() == "chunked":
                resp_body = b""
                while size := int((await reader.readline()).strip() or b"0", 16):
                    resp_body += await reader.readexactly(size)
                    await reader.readline()
            elif "content-length" in resp_headers:
                resp_body = await reader.readexactly(int(resp_headers["content-length"]))
            else:
                resp_body = await reader.read()
            return status, resp_headers, resp_body
        finally:
            writer.close()


async def _read_headers(reader) -> dict[str, str]:
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


async def _respond(writer, status: int, body: bytes, headers: dict) -> None:
    head = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


def _canned(body: bytes):
    req = json.loads(body)
    answer = {
        "id": "canned",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req["model"],
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "So the answer is \\boxed{1}."},
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
    }
    return 200, {"content-type": "application/json"}, json.dumps(answer).encode()
