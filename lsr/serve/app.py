"""A small ASGI service (Starlette) that turns texts into sparse vectors with a saved encoder.

    POST /v1/sparse   {"texts": ["a dog", ...]}  ->  [{"dog": 2.01, "dogs": 1.5, ...}, ...]
                      query string: expand=true|false (default true), naming=wordpiece|id
    GET  /healthz     {"status": "ok", "encoder": ..., "model_hash": ...}

The reply of /v1/sparse is one {token: weight} map per text, in order: what an ML Commons remote model
with the default embedding pre-process function and no post-process function hands to `neural_sparse`
(`query_text`) and to the `sparse_encoding` ingest processor. It is pure ASCII JSON (a token such as
`##林` travels as `\\u` escapes): ML Commons was seen to turn such a character into U+FFFD in about one
request in three (OpenSearch 3.6.0; a multi-byte character split between two read chunks, it seems),
so that query token silently matched nothing. Token names are the `rank_features`
feature names of the OpenSearch backend (WordPiece, with `%` and `.` escaped); `naming=id` gives decimal
token ids for a seismic `sparse_vector` field.

Concurrent requests are micro-batched: texts queued while the previous batch was encoding (or, with
`max_wait_ms`, arriving within that long) are encoded in one call (up to `max_batch` texts), off the
event loop. Bad input is a 4xx with a message naming it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from lsr.encoders.sparse import SparseEncoder

log = logging.getLogger(__name__)


@dataclass
class ServeConfig:
    max_texts: int = 256  # per request
    max_chars: int = 4096  # per text
    max_body_bytes: int = 2 << 20
    max_batch: int = 128  # texts encoded together across requests
    # how long the first request of a batch waits for company; 0: take what queued up while the
    # previous batch was encoding (batches grow under load, a lone request never waits)
    max_wait_ms: float = 0.0


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class MicroBatcher:
    """Gathers (texts, expand) requests into encoder calls; one worker, so the model runs one batch at a time."""

    def __init__(self, encoder: "SparseEncoder", config: ServeConfig):
        self.encoder, self.config = encoder, config
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def encode(self, texts: list[str], expand: bool):
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # first request, or a new event loop (e.g. a test client's)
            self.loop, self.queue = loop, asyncio.Queue()
            self.worker = loop.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, expand, future))
        return await future

    async def _run(self) -> None:
        from starlette.concurrency import run_in_threadpool

        while True:
            first = await self.queue.get()
            group = [first]
            size = len(first[0])
            deadline = asyncio.get_running_loop().time() + self.config.max_wait_ms / 1000
            while size < self.config.max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout) if timeout > 0 else self.queue.get_nowait()
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                group.append(item)
                size += len(item[0])
            for expand in (True, False):  # expanded and no-expansion requests are separate encoder calls
                part = [g for g in group if g[1] == expand]
                if not part:
                    continue
                texts = [t for g in part for t in g[0]]
                try:
                    batch = await run_in_threadpool(self.encoder.encode_query, texts, expand)
                except Exception as exc:  # noqa: BLE001 - handed to each waiting request, never lost
                    for g in part:
                        g[2].set_exception(exc)
                    continue
                start = 0
                for g in part:
                    g[2].set_result(batch.rows(slice(start, start + len(g[0]))))
                    start += len(g[0])


def parse_request(body: bytes, query: Any, config: ServeConfig) -> tuple[list[str], bool, str]:
    """(texts, expand, naming) of a /v1/sparse request, or an HttpError saying what is wrong."""
    if len(body) > config.max_body_bytes:
        raise HttpError(413, f"The request body is {len(body)} bytes; the limit is {config.max_body_bytes}.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, 'The body is not JSON; send {"texts": ["..."]}.') from None
    texts = payload.get("texts") if isinstance(payload, dict) else None
    if not isinstance(texts, list) or not texts:
        raise HttpError(422, 'The body needs "texts": a non-empty list of strings.')
    if len(texts) > config.max_texts:
        raise HttpError(413, f"{len(texts)} texts in one request; the limit is {config.max_texts}.")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise HttpError(422, f"texts[{i}] is empty or not a string; remove it or give it words.")
        if len(text) > config.max_chars:
            raise HttpError(413, f"texts[{i}] has {len(text)} characters; the limit is {config.max_chars}.")
    expand = str(query.get("expand", payload.get("expand", "true"))).lower()
    if expand not in ("true", "false", "1", "0"):
        raise HttpError(422, f"expand must be true or false, got {expand!r}.")
    naming = str(query.get("naming", payload.get("naming", "wordpiece")))
    if naming not in ("wordpiece", "id"):
        raise HttpError(422, f"naming must be wordpiece or id, got {naming!r}.")
    return texts, expand in ("true", "1"), naming


def ascii_json_response() -> type:
    """A Starlette JSONResponse whose body is pure ASCII (`\\uXXXX` escapes), safe for any byte chunking."""
    from starlette.responses import JSONResponse

    class AsciiJSONResponse(JSONResponse):
        def render(self, content: Any) -> bytes:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")

    return AsciiJSONResponse


def create_app(encoder: "SparseEncoder", config: ServeConfig | None = None) -> "Starlette":
    """The ASGI app serving `encoder` (see the module docstring)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from lsr.backends.opensearch.features import FeatureNaming

    JSONResponse = ascii_json_response()

    config = config or ServeConfig()
    batcher = MicroBatcher(encoder, config)
    names = {"wordpiece": FeatureNaming("wordpiece", encoder.vocab), "id": FeatureNaming("id")}
    info = encoder.provenance()

    async def sparse(request):
        try:
            texts, expand, naming = parse_request(await request.body(), request.query_params, config)
        except HttpError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        batch = await batcher.encode(texts, expand)
        return JSONResponse([names[naming].to_features(v) for v in batch])

    async def healthz(request):
        return JSONResponse({"status": "ok", "encoder": info.get("encoder"), "model_hash": info.get("model_hash"),
                             "vocab_size": info.get("vocab_size")})

    return Starlette(routes=[Route("/v1/sparse", sparse, methods=["POST"]), Route("/healthz", healthz)])
