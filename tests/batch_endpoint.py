"""A local OpenAI Batch API endpoint of the tests' own making, built on vLLM's offline batch runner
(``python -m vllm.entrypoints.openai.run_batch``, which reads and writes the Batch API's JSONL
format): enough of the Files and Batches API for the openai client, in a thread of the test.

- ``POST /v1/files`` (multipart, purpose ``batch``) stores the upload;
- ``POST /v1/batches`` creates a batch and starts the runner on its file in the background
  (``.venv-vllm``'s interpreter, the tests' tiny student, the server's chat template); the batch
  is ``in_progress`` while the runner works;
- ``GET /v1/batches/{id}``, ``GET /v1/batches`` (with ``metadata``), ``GET /v1/files/{id}/content``;
- anything else (the chat requests a client sends one by one) is forwarded to ``upstream``
  (e.g. the fault proxy in front of the real vLLM server, which counts them).

``fault(index, custom_id)`` marks lines of a batch's input: ``"expire"`` leaves the line out of
the output and ends the batch ``expired`` (as the Batch API does with what it did not finish in
its window), ``"fail"`` puts an HTTP 500 for it in the error file. It counts what it saw:
``uploads``, ``created`` (batch creations) and each batch's runner exit code.
"""

import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import vllm_server


class BatchEndpoint:
    def __init__(self, model_dir: Path, workdir: Path, upstream: str, fault=None, run: bool = True):
        """``run=False``: batches stay ``in_progress`` until a test changes them (no runner)."""
        self.model_dir, self.workdir, self.upstream = Path(model_dir), Path(workdir), upstream.rstrip("/")
        self.run = run
        self.fault = fault or (lambda index, custom_id: None)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.uploads = self.created = 0
        self.runner_rc: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._runners: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        for t in self._runners:
            t.join(600)

    def wait_until_done(self, batch_id: str, timeout_s: float = 600) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.batches[batch_id]["status"] in ("completed", "expired", "failed"):
                return self.batches[batch_id]
            time.sleep(0.5)
        raise TimeoutError(f"batch {batch_id} did not finish in {timeout_s} s")

    # -- the runner --

    def _run(self, batch_id: str) -> None:
        b = self.batches[batch_id]
        folder = self.workdir / batch_id
        folder.mkdir(parents=True)
        source, out = folder / "input.jsonl", folder / "output.jsonl"
        source.write_bytes(self.files[b["input_file_id"]])
        template = folder / "chat_template.jinja"
        template.write_text(vllm_server.CHAT_TEMPLATE)
        env = vllm_server.engine_env()
        cmd = [
            str(vllm_server.VLLM_PYTHON),
            "-m",
            "vllm.entrypoints.openai.run_batch",
            "-i",
            str(source),
            "-o",
            str(out),
            "--model",
            str(self.model_dir),
            "--served-model-name",
            vllm_server.MODEL_NAME,
            "--dtype",
            "float32",
            "--chat-template",
            str(template),
            "--max-model-len",
            str(vllm_server.MAX_MODEL_LEN),
            "--max-num-batched-tokens",
            "32768",
            "--seed",
            "0",
        ]
        with open(folder / "run_batch.log", "w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder).returncode
        self.runner_rc[batch_id] = rc
        lines = [json.loads(x) for x in out.read_text().splitlines() if x.strip()] if out.exists() else []
        by_id = {x["custom_id"]: x for x in lines}
        inputs = [json.loads(x) for x in source.read_text().splitlines() if x.strip()]
        kept, errors, expired = [], [], False
        for i, req in enumerate(inputs):
            what = self.fault(i, req["custom_id"])
            if what == "expire":
                expired = True
            elif what == "fail":
                body = {"error": {"message": "injected failure", "type": "server_error"}}
                errors.append(
                    {
                        "id": f"err-{i}",
                        "custom_id": req["custom_id"],
                        "response": {"status_code": 500, "request_id": f"req-{i}", "body": body},
                        "error": None,
                    }
                )
            elif req["custom_id"] in by_id:
                kept.append(by_id[req["custom_id"]])
        with self._lock:
            if rc != 0 and not kept:
                b.update(status="failed", failed_at=int(time.time()))
                return
            b["output_file_id"] = self._store("".join(json.dumps(x) + "\n" for x in kept).encode())
            if errors:
                b["error_file_id"] = self._store("".join(json.dumps(x) + "\n" for x in errors).encode())
            b["request_counts"] = {"total": len(inputs), "completed": len(kept), "failed": len(errors)}
            b["status"] = "expired" if expired else "completed"
            b["expired_at" if expired else "completed_at"] = int(time.time())

    def _store(self, data: bytes) -> str:
        file_id = f"file-{uuid.uuid4().hex[:12]}"
        self.files[file_id] = data
        return file_id

    # -- HTTP --

    def _handler(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status: int, body, content_type: str = "application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                path = self.path.split("?")[0].rstrip("/")
                if m := re.fullmatch(r"/v1/files/([\w-]+)/content", path):
                    return self._reply(200, endpoint.files[m.group(1)], "application/octet-stream")
                if m := re.fullmatch(r"/v1/batches/([\w-]+)", path):
                    return self._reply(200, endpoint.batches[m.group(1)])
                if path == "/v1/batches":
                    data = sorted(endpoint.batches.values(), key=lambda b: -b["created_at"])
                    return self._reply(200, {"object": "list", "data": data, "has_more": False})
                return self._forward("GET", b"")

            def do_POST(self):
                path, body = self.path.rstrip("/"), self._body()
                if path == "/v1/files":
                    data = multipart_file(self.headers["Content-Type"], body)
                    with endpoint._lock:
                        endpoint.uploads += 1
                        file_id = endpoint._store(data)
                    return self._reply(
                        200,
                        {
                            "id": file_id,
                            "object": "file",
                            "bytes": len(data),
                            "created_at": int(time.time()),
                            "filename": "batch.jsonl",
                            "purpose": "batch",
                            "status": "processed",
                        },
                    )
                if path == "/v1/batches":
                    req = json.loads(body)
                    batch_id = f"batch_{uuid.uuid4().hex[:12]}"
                    batch = {
                        "id": batch_id,
                        "object": "batch",
                        "endpoint": req["endpoint"],
                        "input_file_id": req["input_file_id"],
                        "completion_window": req["completion_window"],
                        "status": "in_progress",
                        "created_at": int(time.time()),
                        "metadata": req.get("metadata"),
                        "request_counts": {"total": 0, "completed": 0, "failed": 0},
                    }
                    with endpoint._lock:
                        endpoint.created += 1
                        endpoint.batches[batch_id] = batch
                    if endpoint.run:
                        runner = threading.Thread(target=endpoint._run, args=(batch_id,), daemon=True)
                        endpoint._runners.append(runner)
                        runner.start()
                    return self._reply(200, batch)
                return self._forward("POST", body)

            def _forward(self, method: str, body: bytes):
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                req = urllib.request.Request(
                    endpoint.upstream + self.path.removeprefix("/v1"), data=body or None, headers=headers, method=method
                )
                try:
                    with urllib.request.urlopen(req, timeout=120) as r:
                        return self._reply(r.status, r.read())
                except urllib.error.HTTPError as e:
                    return self._reply(e.code, e.read())

        return Handler


def multipart_file(content_type: str, body: bytes) -> bytes:
    """The ``file`` part of a multipart/form-data body."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type).group(1).encode()
    for part in body.split(b"--" + boundary):
        head, _, data = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            return data.removesuffix(b"\r\n")
    raise ValueError("no file part in the upload")
