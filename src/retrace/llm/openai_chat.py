"""Chat generation against any OpenAI-compatible server (`vllm serve`, a vLLM replica fleet, a hosted API).

Built on `httpx` rather than the official `openai` client on purpose: the behaviour that matters at
scale (which failures are retried, how long to back off, what counts as a malformed body, when the
server is ready) is ours, in this module, and tested against a real HTTP server; with the official
client we would disable its retries and map its exceptions back to status codes anyway. One pooled,
thread-safe `httpx.Client` serves a pool of `concurrency` worker threads.

Failures are per request: a request that still fails after `max_retries` retries yields `None`,
which the policy turns into its counted structural fallback; the run goes on.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed

import httpx
from tqdm.auto import tqdm

from retrace.llm.chat import GenerationUsage, Message

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class ServerNotReady(RuntimeError):
    """The server did not answer `GET /models` before the readiness deadline."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class _Fatal(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header given in seconds; HTTP dates are ignored (backoff applies)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


class OpenAIChatModel:
    """Chat completions from an OpenAI-compatible server, concurrent, with timeouts and retries.

    `base_url` ends with the API root (`http://host:8000/v1`). `api_key_env` names the environment
    variable holding the key (empty or unset: no key, as local servers expect). `timeout_s` bounds
    each network operation of a request; a request is tried `1 + max_retries` times, backing off
    `backoff_s * 2**attempt` seconds (at most `max_backoff_s`, plus up to 25% seeded jitter, at
    least the server's `Retry-After`). Before the first request the server is polled until it lists
    its models, for at most `ready_timeout_s`. An empty `model` means the server's only model.
    """

    def __init__(self, base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY", max_new_tokens: int = 96,
                 temperature: float = 0.0, seed: int = 0, concurrency: int = 8, timeout_s: float = 60.0,
                 max_retries: int = 4, ready_timeout_s: float = 600.0, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, poll_s: float = 1.0):
        if concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise ValueError("concurrency must be >= 1, max_retries >= 0 and timeout_s > 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.ready_timeout_s = ready_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_s = poll_s
        api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s),
                                   limits=httpx.Limits(max_connections=concurrency + 1))
        self.usage = GenerationUsage()
        self.counts: Counter[str] = Counter()  # finish:<reason>, retry:<reason>, failed:<reason>
        self._lock = threading.Lock()
        self._jitter = random.Random(seed)
        self._ready = False

    # --- readiness ---------------------------------------------------------------------------------

    def wait_until_ready(self) -> list[str]:
        """Poll `GET {base_url}/models` until it answers with a model list; the served model ids.

        Servers take minutes to load weights, and requests sent before then fail in confusing ways;
        waiting here turns "not up yet" into a pause and "never came up" into one clear error.
        """
        url = f"{self.base_url}/models"
        deadline = time.monotonic() + self.ready_timeout_s
        last = "no answer yet"
        while True:
            ids = None
            try:
                response = self.client.get(url)
                if response.status_code == 200:
                    ids = [m["id"] for m in response.json()["data"]]
                last = f"HTTP {response.status_code}"
            except (httpx.TransportError, ValueError, KeyError, TypeError) as error:
                last = f"{type(error).__name__}: {error}"
            if ids is not None:
                self._check_model(ids)
                self._ready = True
                return ids
            if time.monotonic() + self.poll_s > deadline:
                raise ServerNotReady(
                    f"the OpenAI-compatible server at {self.base_url} did not list its models at {url} within "
                    f"{self.ready_timeout_s:g} s (last: {last}); start it (e.g. `python -m "
                    f"vllm.entrypoints.openai.api_server --model MODEL --port 8000`) or fix policy_base_url")
            time.sleep(self.poll_s)

    def _check_model(self, ids: list[str]) -> None:
        if not self.model:
            if len(ids) != 1:
                raise ValueError(f"{self.base_url} serves {ids}; name one of them as the policy model")
            self.model = self.name = ids[0]
        elif self.model not in ids:
            raise ValueError(f"{self.base_url} does not serve model '{self.model}'; it serves {ids}: set the "
                             "policy model to one of them")

    # --- generation --------------------------------------------------------------------------------

    def generate(self, conversations: list[list[Message]], desc: str = "generating", *,
                 temperature: float | None = None, seed: int | None = None) -> list[str | None]:
        """One reply per conversation, in order; `None` for a request that failed after its retries."""
        if not conversations:
            return []
        if not self._ready:
            self.wait_until_ready()
        temperature = self.temperature if temperature is None else temperature
        seed = self.seed if seed is None else seed
        replies: list[str | None] = [None] * len(conversations)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._complete, c, temperature, seed): i for i, c in enumerate(conversations)}
            done = as_completed(futures)
            for future in tqdm(done, total=len(futures), desc=desc, unit="request", disable=len(futures) < 64):
                replies[futures[future]] = future.result()
        return replies

    def _complete(self, conversation: list[Message], temperature: float, seed: int) -> str | None:
        body = {"model": self.model, "messages": conversation, "max_tokens": self.max_new_tokens,
                "temperature": temperature}
        if temperature > 0:
            body["seed"] = seed
        texts = self.request("chat/completions", body)
        return None if texts is None else texts[0]

    def request(self, endpoint: str, body: dict) -> list[str] | None:
        """POST `body` to `{base_url}/{endpoint}` with this client's retries; every choice's text, in order.

        `endpoint` is `chat/completions` (choices carry `message.content`) or `completions` (`text`).
        `None` when the request failed for good (counted under `failed:<reason>`).
        """
        if not self._ready:
            self.wait_until_ready()
        for attempt in range(self.max_retries + 1):
            try:
                return self._post_once(endpoint, body)
            except _Fatal as error:
                self._count(f"failed:{error.reason}")
                return None
            except _Retryable as error:
                if attempt == self.max_retries:
                    self._count(f"failed:{error.reason}")
                    logger.warning("request to %s failed after %d tries (%s)", self.base_url, attempt + 1,
                                   error.reason)
                    return None
                self._count(f"retry:{error.reason}")
                time.sleep(self._backoff(attempt, error.retry_after_s))
        return None  # not reached

    def _post_once(self, endpoint: str, body: dict) -> list[str]:
        try:
            response = self.client.post(f"{self.base_url}/{endpoint}", json=body)
        except httpx.TimeoutException as error:
            raise _Retryable("timeout") from error
        except httpx.TransportError as error:
            raise _Retryable("connection") from error
        if response.status_code in RETRYABLE_STATUS:
            raise _Retryable(f"http_{response.status_code}", _retry_after(response))
        if response.status_code != 200:
            logger.warning("%s answered HTTP %d: %s", self.base_url, response.status_code, response.text[:300])
            raise _Fatal(f"http_{response.status_code}")
        try:
            payload = response.json()
            choices = sorted(payload["choices"], key=lambda c: c.get("index", 0))
            texts = [c["message"]["content"] if endpoint.startswith("chat") else c["text"] for c in choices]
            if not texts or not all(isinstance(t, str) for t in texts):
                raise TypeError("no choices, or a choice whose text is not a string")
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as error:
            raise _Retryable("malformed_json") from error
        usage = payload.get("usage") or {}
        with self._lock:
            self.usage.requests += 1
            self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
            for choice in choices:
                self.counts[f"finish:{choice.get('finish_reason') or 'unknown'}"] += 1
        return texts

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        with self._lock:
            jitter = 1.0 + 0.25 * self._jitter.random()
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * jitter
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_backoff_s))
        return delay

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def close(self) -> None:
        self.client.close()
