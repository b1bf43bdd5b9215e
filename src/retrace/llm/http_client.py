"""The transport of the `openai` engine: one pooled HTTP client with readiness wait, timeouts and retries.

Built on `httpx` rather than the official `openai` client on purpose: the behaviour that matters at
scale (which failures are retried, how long to back off, what counts as a malformed body, when the
server is ready) is ours, in this module, and tested against a real HTTP server; with the official
client we would disable its retries and map its exceptions back to status codes anyway. One pooled,
thread-safe `httpx.Client` serves a pool of `concurrency` worker threads.

Failures are per request: a request that still fails after `max_retries` retries comes back as its
reason (`timeout`, `connection`, `http_503`, `malformed_json`, ...), counted `failed:<reason>` in the
engine's `Usage`; every retry is counted `retry:<reason>`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from retrace.llm.types import Usage

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
T = TypeVar("T")


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


class OpenAIClient:
    """Requests to one OpenAI-compatible API root (`http://host:8000/v1`).

    `api_key_env` names the environment variable holding the key (empty or unset: no key, as local
    servers expect). `timeout_s` bounds each network operation of a request; a request is tried
    `1 + max_retries` times, backing off `backoff_s * 2**attempt` seconds (at most `max_backoff_s`, plus
    up to 25% seeded jitter, at least the server's `Retry-After`). Before the first request the server
    is polled until it lists its models, for at most `ready_timeout_s`. An empty `model` means the
    server's only model.
    """

    def __init__(self, base_url: str, model: str, usage: Usage, *, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 8, timeout_s: float = 60.0, max_retries: int = 4, ready_timeout_s: float = 600.0,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, poll_s: float = 1.0, seed: int = 0,
                 key_prefix: str = "policy"):
        if concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise ValueError("concurrency must be >= 1, max_retries >= 0 and timeout_s > 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.usage = usage
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.ready_timeout_s = ready_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_s = poll_s
        self.key_prefix = key_prefix  # the role, for error messages that name its keys
        api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s),
                                   limits=httpx.Limits(max_connections=concurrency + 1))
        self._lock = threading.Lock()
        self._jitter = random.Random(seed)
        self.ready = False

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
                self.ready = True
                return ids
            if time.monotonic() + self.poll_s > deadline:
                raise ServerNotReady(
                    f"the OpenAI-compatible server at {self.base_url} did not list its models at {url} within "
                    f"{self.ready_timeout_s:g} s (last: {last}); start it (e.g. `python -m "
                    f"vllm.entrypoints.openai.api_server --model MODEL --port 8000`) or fix {self.key_prefix}_base_url")
            time.sleep(self.poll_s)

    def _check_model(self, ids: list[str]) -> None:
        if not self.model:
            if len(ids) != 1:
                raise ValueError(f"{self.base_url} serves {ids}; name one of them as {self.key_prefix}_model")
            self.model = ids[0]
        elif self.model not in ids:
            raise ValueError(f"{self.base_url} does not serve model '{self.model}'; it serves {ids}: set "
                             f"{self.key_prefix}_model to one of them")

    def call(self, endpoint: str, body: dict, parse: Callable[[dict], T]) -> tuple[T | None, str | None]:
        """POST `body` to `{base_url}/{endpoint}` with retries; `(parse(payload), None)` or `(None, reason)`.

        `parse` turns the JSON payload into the caller's result and raises (KeyError, IndexError,
        TypeError, ValueError) on a body that does not hold one: that is retried as `malformed_json`.
        """
        if not self.ready:
            self.wait_until_ready()
        for attempt in range(self.max_retries + 1):
            try:
                return self._post_once(endpoint, body, parse), None
            except _Fatal as error:
                self.usage.count(f"failed:{error.reason}")
                return None, error.reason
            except _Retryable as error:
                if attempt == self.max_retries:
                    self.usage.count(f"failed:{error.reason}")
                    logger.warning("request to %s failed after %d tries (%s)", self.base_url, attempt + 1,
                                   error.reason)
                    return None, error.reason
                self.usage.count(f"retry:{error.reason}")
                time.sleep(self._backoff(attempt, error.retry_after_s))
        raise AssertionError("not reached")

    def _post_once(self, endpoint: str, body: dict, parse: Callable[[dict], Any]) -> Any:
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
            return parse(response.json())
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError, ValueError) as error:
            raise _Retryable("malformed_json") from error

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        with self._lock:
            jitter = 1.0 + 0.25 * self._jitter.random()
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * jitter
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_backoff_s))
        return delay

    def close(self) -> None:
        self.client.close()
