"""A real local HTTP server speaking the OpenAI chat-completions and completions protocol, with scripted faults.

Tests talk to it over loopback exactly as they would to `vllm serve`: the client's sockets, timeouts,
status codes and bodies are all real. Only the words are scripted (`reply(request_body) -> str`; None is
sent as a null `content`, as vLLM's reasoning parsers do when a reply is all reasoning).

Scoring, as vLLM's server does it: a `completions` request whose `prompt` is a list of token ids and that
asks for `prompt_logprobs` is answered with vLLM's `choices[0]["prompt_logprobs"]` (one entry per prompt
token, the first None, each `{"<token id>": {"logprob", "rank", "decoded_token"}}`), the log-probabilities
computed by `score(ids) -> [log p(ids[p] | ids[:p]) for p in 1..len(ids)-1]`. `rank` is not computed (1)
and `decoded_token` is empty. `prompt_logprobs=False` models a server that cannot score: it ignores the
field and answers with one generated token only.

Faults are consumed one per POST (chat, completion or scoring request), in arrival order, from `server.faults`:
`"500"` (HTTP 500), `"429"` (with `Retry-After`), `"slow"` (sleep `slow_s`, past the client's timeout,
then answer), `"malformed"` (HTTP 200 with a body that is not JSON), `"empty_choices"` (valid JSON,
no choices), `"400"` (a non-retryable client error). `ready_after_s` keeps `/v1/models` at 503 for
that long after start, like a server still loading weights.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def prompt_material(prompt: str) -> str:
    """Two names from what the prompt shows (its facts, the code), not from its templates or its role line
    (the file, the project): what a validator that judges information wants a note to name ("A and B", or
    the one there is). Names that look like identifiers first."""
    from retrace.agents.policies import load_prompt
    from retrace.agents.requests import SENTENCES
    from retrace.data.text_checks import grounding_terms, terms

    templates = "\n".join(re.sub(r"\{\w+\}", " ", load_prompt(kind)) for kind in [*SENTENCES, "system"])
    role, _, rest = prompt.strip().partition("\n")
    body = rest.rsplit("\n\n", 1)[0]  # not the instruction
    grounding = grounding_terms(body, templates, (role,))
    names = [n for n in re.findall(r"\b[A-Za-z_][A-Za-z0-9_]{3,}\b", body) if terms(n) & grounding]
    names.sort(key=lambda n: not ("_" in n or not n[1:].islower()))  # identifiers first, else in order
    distinct = {frozenset(terms(n)): n for n in reversed(names)}  # one name per set of terms, the first kept
    return " and ".join(sorted(distinct.values(), key=names.index)[:2])


def user_prompt(body: dict) -> str:
    """The prompt of a request: its last user message (a prefilled assistant opener may follow it), or the
    completion prompt."""
    if "messages" not in body:
        return str(body.get("prompt", ""))
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def grounded_reply(body: dict) -> str:
    """Words a validator accepts: they name the file (or project) the prompt is about and something the prompt
    shows of it, paste no code, and differ by what is asked (a plan entry, a report and a Think about one
    file say different things, as they must: a text that repeats an earlier one found in its prompt echoes
    the prompt)."""
    prompt = user_prompt(body)
    material = prompt_material(prompt)
    uses = f" with {material}" if material else ""
    # The policy's templates name the file in their last line (the instruction); the project's name is quoted.
    instruction = prompt.strip().rsplit("\n", 1)[-1]
    match = (re.search(r"(?:what|write|writing|gives|of) ([\w./-]+\.\w+)", instruction)
             or re.search(r"(?:file|implement|write|wrote) (\S+\.\w+)", prompt) or re.search(r'project "([^"]+)"', prompt))
    subject = match.group(1) if match else "the project"
    for asked, note in (("offers", "gives later files its names"), ("describe what", "does its part of the plan"),
                        ("why you read", "needs its dependencies first, so it reads them")):
        if asked in instruction:
            return f"The server's note: {subject} {note}{uses}."
    return f"The server's note: {subject} comes next{uses}."


class FakeChatServer:
    """`ThreadingHTTPServer` on 127.0.0.1, an ephemeral port, in a daemon thread; a context manager."""

    def __init__(self, reply=grounded_reply, *, model: str = "test-model", ready_after_s: float = 0.0,
                 delay_s: float = 0.0, slow_s: float = 2.0, retry_after: str = "1", score=None,
                 prompt_logprobs: bool = True):
        self.reply = reply
        self.score = score                # ids -> log-probabilities of ids[1:] (scoring requests)
        self.prompt_logprobs = prompt_logprobs
        self.model = model
        self.ready_after_s = ready_after_s
        self.delay_s = delay_s            # every chat request takes this long (to observe concurrency)
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.faults: deque[str] = deque()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.chat_requests: list[dict] = []   # bodies received (every POST), in arrival order
        self.authorizations: list[str | None] = []  # the Authorization header of each chat request
        self.log: list[tuple[float, str]] = []  # (time, fault or "ok") per chat request
        self.model_polls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self.started = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def scoring_requests(self) -> list[list[int]]:
        """The token-id prompts of the scoring requests received (faulted ones included), in arrival order."""
        return [body["prompt"] for body in self.chat_requests if _is_scoring(body)]

    def __enter__(self) -> FakeChatServer:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

            def do_GET(self):
                if self.path.rstrip("/") != "/v1/models":
                    return self._send(404, b'{"error": "not found"}')
                with server.lock:
                    server.model_polls += 1
                if time.monotonic() - server.started < server.ready_after_s:
                    return self._send(503, b'{"error": "loading"}')
                self._send(200, json.dumps({"object": "list", "data": [{"id": server.model, "object": "model"}]})
                           .encode())

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    return self._send(404, b'{"error": "not found"}')
                with server.lock:
                    fault = server.faults.popleft() if server.faults else "ok"
                    server.chat_requests.append(body)
                    server.authorizations.append(self.headers.get("Authorization"))
                    server.log.append((time.monotonic(), fault))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay_s)
                    self._answer(body, fault)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, body: dict, fault: str) -> None:
                if fault == "500":
                    return self._send(500, b'{"error": "internal"}')
                if fault == "400":
                    return self._send(400, b'{"error": "bad request"}')
                if fault == "429":
                    return self._send(429, b'{"error": "slow down"}', {"Retry-After": server.retry_after})
                if fault == "malformed":
                    return self._send(200, b'{"choices": [{"message": {"content": "cut off')
                if fault == "empty_choices":
                    return self._send(200, b'{"choices": []}')
                if fault == "slow":
                    time.sleep(server.slow_s)
                if _is_scoring(body):
                    return self._send(200, json.dumps(server._score_payload(body)).encode())
                chat = "messages" in body
                texts = [server.reply(body) for _ in range(int(body.get("n", 1)))]
                prompt = " ".join(m["content"] for m in body["messages"]) if chat else body["prompt"]
                prompt_tokens = len(prompt) if isinstance(prompt, list) else len(prompt.split())
                completion_tokens = sum(len((text or "").split()) for text in texts)  # None: a null content
                finish = "length" if completion_tokens >= body.get("max_tokens", 1 << 30) else "stop"
                with server.lock:
                    server.prompt_tokens += prompt_tokens
                    server.completion_tokens += completion_tokens
                # Choices listed last-first: clients must order them by `index`.
                choices = [{"index": i, "finish_reason": finish,
                            **({"message": {"role": "assistant", "content": t}} if chat else {"text": t})}
                           for i, t in reversed(list(enumerate(texts)))]
                payload = {"id": "cmpl-test", "object": "chat.completion" if chat else "text_completion",
                           "model": server.model, "choices": choices,
                           "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                     "total_tokens": prompt_tokens + completion_tokens}}
                self._send(200, json.dumps(payload).encode())

        return Handler

    def _score_payload(self, body: dict) -> dict:
        """vLLM's answer to a scoring request: one generated token, and the prompt's log-probabilities."""
        ids = body["prompt"]
        choice = {"index": 0, "text": " x", "finish_reason": "length", "logprobs": None}
        if self.prompt_logprobs:
            if self.score is None:
                raise RuntimeError("FakeChatServer(score=...) is needed to answer scoring requests")
            logprobs = [float(x) for x in self.score(ids)]
            if len(logprobs) != len(ids) - 1:
                raise RuntimeError(f"score() gave {len(logprobs)} log-probabilities for {len(ids)} prompt tokens")
            choice["prompt_logprobs"] = [None] + [{str(token): {"logprob": lp, "rank": 1, "decoded_token": ""}}
                                                  for token, lp in zip(ids[1:], logprobs)]
        with self.lock:
            self.prompt_tokens += len(ids)
            self.completion_tokens += 1
        return {"id": "cmpl-score", "object": "text_completion", "model": self.model, "choices": [choice],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": 1, "total_tokens": len(ids) + 1}}


def _is_scoring(body: dict) -> bool:
    """A completions request over token ids that asks for prompt log-probabilities (what scoring sends)."""
    prompt = body.get("prompt")
    return "prompt_logprobs" in body and isinstance(prompt, list) and all(isinstance(t, int) for t in prompt)
