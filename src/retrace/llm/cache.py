"""A persistent cache of model replies keyed by the request, so a retried synthesis batch does not pay twice.

The key is the sha256 of the canonical JSON of everything that determines a reply: the engine kind, the model
(its name or path, a fingerprint of a local checkpoint's files or the hub revision, the tokenizer, the dtype),
the method (`chat` or `complete`), the input (messages or prompt), the sampling parameters and the chat
template's switches. Only complete replies are kept: a reply with `error` is never stored, so a request that
failed is asked again. Scoring is not cached.

Storage is SQLite (WAL) in one directory shared by every worker: each `RequestCache` (one per process, per
`EnginePool`) writes its own file there and reads every file there, so a batch retried on another worker, or
after a crash, finds the replies already paid for (datatrove keeps its request cache per rank the same way).
A file is created under a temporary name and renamed once its table exists, so readers never see a half-made
file; one that is corrupt or truncated is reported once and ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import socket
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrace.atomic import TEMP_SUFFIX
from retrace.llm.embedded import resolve_model_path
from retrace.llm.types import Message, Reply, SamplingParams

logger = logging.getLogger(__name__)

KEY_VERSION = 1            # bump when what a key covers changes: old entries then simply miss
QUERY_CHUNK = 500          # keys per `IN (...)` query, under SQLite's variable limit
FINGERPRINT_BYTES = 1 << 20  # of each checkpoint file: the first and last MiB (headers and weights differ there)
# Engines whose sampled replies depend on the batch they were drawn in (one seed per generate call, not per
# request): when they sample, a reply is keyed by its whole call, so a retried call replays whole or not at all
# and the output equals an uninterrupted run's.
SEEDED_PER_BATCH = frozenset({"hf"})
SCHEMA = "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(model: dict[str, Any], method: str, request: str | list[Message], params: SamplingParams,
                template: dict[str, Any] | None = None, batch: str = "") -> str:
    """The sha256 hex of one request: `model` (from `model_identity`), `method` ("chat" or "complete"), the
    input, the sampling parameters, the chat template's switches and, for batch-seeded sampling, the call."""
    described = {"version": KEY_VERSION, "model": model, "method": method, "input": request,
                 "params": params.to_dict(), "template": template or {}, "batch": batch}
    return hashlib.sha256(canonical_json(described).encode()).hexdigest()


def checkpoint_fingerprint(directory: Path) -> str:
    """A digest of a local checkpoint's files (names, sizes, first and last MiB): the same weights copied to
    another worker match, a retrained checkpoint at the same path does not. Reads a few MiB, not the weights."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(FINGERPRINT_BYTES))
            if size > 2 * FINGERPRINT_BYTES:
                handle.seek(size - FINGERPRINT_BYTES)
                digest.update(handle.read())
            elif size > FINGERPRINT_BYTES:
                digest.update(handle.read())
    return digest.hexdigest()


def model_identity(engine: Any) -> dict[str, Any]:
    """What names the model behind an engine built from its `config`, for request keys.

    In-process engines (hf, vllm): a local checkpoint (and tokenizer) by its folder's name and a fingerprint of
    its files, not by its path, so the same weights at another path on another node match; a hub id with the
    revision the engine loaded; the dtype. A served model (openai): its id, or the server's address when the id
    is left empty (the server's only model); the address is otherwise not part of the key, so replicas of one
    model share their replies.
    """
    config = engine.config
    identity: dict[str, Any] = {"engine": engine.backend, "model": config.model, "tokenizer": config.tokenizer_path}
    for optional in ("revision", "gguf_file"):  # load keys some engines may grow; part of the key if present
        if getattr(config, optional, None):
            identity[optional] = getattr(config, optional)
    if engine.backend == "openai":
        identity["model"] = config.model or f"the only model at {engine.base_url}"
        return identity
    identity["dtype"] = config.dtype
    for part in ("model", "tokenizer"):
        local = Path(resolve_model_path(identity[part]))
        if local.is_dir():
            identity[part] = {"name": local.name, "files": checkpoint_fingerprint(local)}
    if isinstance(identity["model"], str) and "revision" not in identity:  # a hub id: the revision loaded
        loaded = getattr(getattr(engine, "model", None), "config", None)
        identity["revision"] = getattr(loaded, "_commit_hash", None)
    return identity


def _encode_reply(reply: Reply) -> str:
    return canonical_json({"texts": list(reply.texts), "finish_reasons": list(reply.finish_reasons)})


def _decode_reply(stored: str) -> Reply:
    value = json.loads(stored)
    texts, finishes = value["texts"], value["finish_reasons"]
    if not texts or not all(isinstance(t, str) for t in [*texts, *finishes]):
        raise ValueError("a stored reply without texts")
    return Reply(tuple(texts), tuple(finishes))


class RequestCache:
    """Replies by request key, in SQLite files under `directory`: this writer's own file, and every file there.

    Thread-safe. After a fork the child opens its own files (an inherited SQLite connection is never used).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory).expanduser()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._writer: sqlite3.Connection | None = None   # created on the first store
        self._writer_path: Path | None = None
        self._readers: dict[Path, sqlite3.Connection] = {}
        self._unreadable: set[Path] = set()
        self._store_failed = False

    @property
    def writer_path(self) -> Path | None:
        """This writer's file (None until something was stored)."""
        return self._writer_path

    def get_many(self, keys: Sequence[str]) -> dict[str, Reply]:
        """The cached replies of those `keys` that any file in the directory holds."""
        wanted = set(keys)
        found: dict[str, Reply] = {}
        with self._lock:
            self._after_fork()
            for path, connection in self._connections():
                missing = sorted(wanted - found.keys())
                if not missing:
                    break
                try:
                    for start in range(0, len(missing), QUERY_CHUNK):
                        chunk = missing[start:start + QUERY_CHUNK]
                        rows = connection.execute(f"SELECT key, reply FROM replies WHERE key IN "
                                                  f"({','.join('?' * len(chunk))})", chunk).fetchall()
                        found.update((key, _decode_reply(stored)) for key, stored in rows)
                except (sqlite3.Error, ValueError, KeyError, TypeError) as error:
                    self._give_up_on(path, error)
        return found

    def put_many(self, replies: Sequence[tuple[str, Reply]]) -> int:
        """Store the complete ones of `replies` (never a failed reply) in one transaction; how many were stored.
        A cache that cannot be written is reported once and then left alone: the run goes on without it."""
        complete = [(key, _encode_reply(reply)) for key, reply in replies if not reply.failed and reply.texts]
        if not complete:
            return 0
        with self._lock:
            self._after_fork()
            if self._store_failed:
                return 0
            try:
                writer = self._writer or self._open_writer()
                with writer:
                    writer.executemany("INSERT OR REPLACE INTO replies (key, reply) VALUES (?, ?)", complete)
            except sqlite3.Error as error:
                self._store_failed = True
                logger.warning("the request cache cannot write to %s (%s): replies from now on are not kept",
                               self._writer_path or self.directory, error)
                return 0
        return len(complete)

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                for connection in [*self._readers.values(), *([self._writer] if self._writer else [])]:
                    connection.close()
            self._reset()

    def __getstate__(self) -> dict[str, Any]:
        """Only the directory travels (to a Ray actor, a worker process): connections are opened there."""
        return {"directory": self.directory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"])

    def __enter__(self) -> RequestCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- files -------------------------------------------------------------------------------------

    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            self._reset()  # the parent's connections stay the parent's: not closed, not used

    def _open_writer(self) -> sqlite3.Connection:
        """This writer's file, made under a temporary name (table and WAL mode set) and renamed into place."""
        host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "host"
        path = self.directory / f"requests-{host}-{os.getpid()}-{secrets.token_hex(4)}.sqlite"
        partial = path.with_name(f".{path.name}{TEMP_SUFFIX}")  # what `remove_partial_writes` clears if killed
        connection = sqlite3.connect(partial)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(SCHEMA)
            connection.commit()
        finally:
            connection.close()
        os.replace(partial, path)
        self._writer = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._writer.execute("PRAGMA synchronous=NORMAL")  # a committed reply survives a killed process
        self._writer_path = path
        return self._writer

    def _connections(self):
        """(path, connection) for every readable file in the directory: this writer's first, new files opened."""
        if self._writer is not None and self._writer_path not in self._unreadable:
            yield self._writer_path, self._writer
        for path in sorted(self.directory.glob("*.sqlite")):
            if path == self._writer_path or path in self._unreadable:
                continue
            if path not in self._readers:
                try:
                    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30,
                                                 check_same_thread=False)
                    connection.execute("SELECT key, reply FROM replies LIMIT 0")
                except sqlite3.Error as error:
                    self._give_up_on(path, error)
                    continue
                self._readers[path] = connection
            yield path, self._readers[path]

    def _give_up_on(self, path: Path, error: Exception) -> None:
        """Report an unreadable file once and ignore it from now on (another worker's file is never deleted)."""
        self._unreadable.add(path)
        connection = self._readers.pop(path, None)
        if connection is not None:
            connection.close()
        if path == self._writer_path:
            self._store_failed = True
        logger.warning("request cache: ignoring %s, which cannot be read (%s: %s)", path, type(error).__name__, error)


class CachedEngine:
    """An engine whose `chat` and `complete` look each request up in a `RequestCache` first.

    Only the misses go to the engine, in one call and in input order; their complete replies are stored; the
    replies come back in input order. `usage` (the engine's own) counts `cache:hit`. Everything else (scoring,
    the tokenizer, `describe`, `close`, ...) is the engine's: attributes are read from and set on it.
    """

    def __init__(self, engine: Any, cache: RequestCache):
        object.__setattr__(self, "engine", engine)
        object.__setattr__(self, "cache", cache)
        object.__setattr__(self, "_identity", None)

    def __getattr__(self, name: str) -> Any:
        if name in ("engine", "cache", "_identity"):  # not set yet (a copy being made): not the engine's
            raise AttributeError(name)
        return getattr(self.engine, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.engine, name, value)

    def __repr__(self) -> str:
        return f"CachedEngine({self.engine!r}, {self.cache.directory})"

    def for_role(self, config: Any, *, seed: int = 0, **scoring: Any) -> CachedEngine:
        """The engine's view for another role (`Engine.for_role`), with the same cache."""
        return CachedEngine(self.engine.for_role(config, seed=seed, **scoring), self.cache)

    @property
    def model_identity(self) -> dict[str, Any]:
        if self._identity is None:
            object.__setattr__(self, "_identity", model_identity(self.engine))
        return self._identity

    def chat(self, conversations: list[list[Message]], params: SamplingParams | None = None,
             desc: str = "generating") -> list[Reply]:
        params = params or self.engine.default_params
        template = {"enable_thinking": self.engine.config.enable_thinking}
        return self._through_cache("chat", conversations, params, desc, template)

    def complete(self, prompts: list[str], params: SamplingParams | None = None,
                 desc: str = "generating") -> list[Reply]:
        return self._through_cache("complete", prompts, params or self.engine.default_params, desc, {})

    def _through_cache(self, method: str, requests: list, params: SamplingParams, desc: str,
                       template: dict[str, Any]) -> list[Reply]:
        send = getattr(self.engine, method)
        if not requests:
            return send(requests, params, desc=desc)
        batch = ""
        per_batch = params.temperature > 0 and self.engine.backend in SEEDED_PER_BATCH
        if per_batch:  # the call is the unit: the same requests, in the same order, in the same batch size
            call = {"requests": requests, "batch_size": getattr(self.engine, "batch_size", None)}
            batch = hashlib.sha256(canonical_json(call).encode()).hexdigest()
        keys = [request_key(self.model_identity, method, r, params, template, batch) for r in requests]
        cached = self.cache.get_many(keys)
        misses = [i for i, key in enumerate(keys) if key not in cached]
        if per_batch and misses:
            misses = list(range(len(requests)))
        replies: list[Reply | None] = [cached.get(key) for key in keys]
        if misses:
            fresh = send([requests[i] for i in misses], params, desc=desc)
            for i, reply in zip(misses, fresh):
                replies[i] = reply
            self.cache.put_many([(keys[i], reply) for i, reply in zip(misses, fresh)])
        hits = len(requests) - len(misses)
        if hits:
            self.engine.usage.count("cache:hit", hits)
            logger.debug("%s: %d of %d replies from the request cache", desc, hits, len(requests))
        return replies
