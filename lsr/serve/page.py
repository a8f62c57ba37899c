"""The search page of `lsr serve --index ...`: an image grid whose every hit is explained by the tokens that
matched it, over either backend, and the JSON API behind it.

    GET /                      the page (static HTML + JS + CSS from lsr/serve/static)
    GET /v1/search?q=&k=&mode=&page=    hits with matched tokens, and the query's expansion
    GET /v1/similar?id=&k=&page=        "more like this": the image's own sparse vector as the query
    POST /v1/search-image?k=&page=      search by an example image: the body is the image file (bounded in
                                        bytes and pixels, decoded in memory, never written anywhere)
    GET /v1/search-image?url=/image/ROOT/PATH   the same with a file of the index's folders
    (every search also takes the photo filters folder, taken_after, taken_before, camera, orientation,
    type, min_width, min_height; hits under the score floor are left out and counted in below_floor)
    GET /v1/info               modes offered, k limit, documents
    GET /thumb/ROOT/PATH       cached JPEG thumbnail (a placeholder when the file is gone or unreadable)
    GET /image/ROOT/PATH       the file itself
    GET /openapi.json          the API's OpenAPI schema (Starlette's schema generator, from the docstrings)
    GET /healthz

Files are served only from the folders the index was built from (`lsr.serve.files`); anything else is
404. With `token`, every request needs ``Authorization: Bearer TOKEN`` or the cookie that ``/?token=TOKEN``
sets (so that the browser's image requests carry it). Every response has a restrictive
Content-Security-Policy: scripts, styles and images from this origin only.
"""

from __future__ import annotations

import hmac
from importlib import resources
from typing import TYPE_CHECKING

from lsr.serve.app import HttpError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from lsr.serve.files import ImageFiles
    from lsr.serve.search import SearchService

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
COOKIE = "lsr_token"


def static_file(name: str) -> bytes:
    return resources.files("lsr.serve").joinpath("static", name).read_bytes()


def create_search_app(service: "SearchService", files: "ImageFiles | None" = None,
                      token: str | None = None) -> "Starlette":
    """The ASGI app of the search page (see the module docstring)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
    from starlette.routing import Route
    from starlette.schemas import SchemaGenerator

    from lsr.serve.files import PLACEHOLDER_SVG, OutsideRoots

    pages = {name: static_file(name) for name in STATIC}

    def error(exc: HttpError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def page(request):
        if token and request.query_params.get("token"):  # the link printed at start: keep the token as a cookie
            reply = RedirectResponse("/", status_code=303)
            reply.set_cookie(COOKIE, request.query_params["token"], httponly=True, samesite="strict")
            return reply
        return Response(pages["index.html"], media_type="text/html; charset=utf-8")

    async def static(request):
        name = request.path_params["name"]
        if name not in STATIC or name == "index.html":
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(pages[name], media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})

    async def search(request):
        """
        summary: Search the index with words.
        parameters:
          - {name: q, in: query, required: true, schema: {type: string, maxLength: 256}}
          - {name: k, in: query, schema: {type: integer, minimum: 1, maximum: 100, default: 10}}
          - {name: mode, in: query, schema: {type: string, enum: [expanded, no-expansion, rerank-dense, hybrid]}}
          - {name: page, in: query, schema: {type: integer, minimum: 0, default: 0}}
        responses:
          200: {description: "hits (rank, id, score, path, file_size, tokens [[token, contribution]], thumb,
                image), the query's expansion [[token, weight]], has_more, took_ms"}
          413: {description: q too long}
          422: {description: "q empty, k or page out of range, or a mode this index does not offer"}
        """
        from starlette.concurrency import run_in_threadpool

        p = request.query_params
        try:
            result = await run_in_threadpool(service.search, p.get("q"), p.get("k", 10), p.get("mode"), p.get("page", 0),
                                             p)
        except HttpError as exc:
            return error(exc)
        return JSONResponse(result)

    async def similar(request):
        """
        summary: More like this - search with an indexed image's own sparse vector.
        parameters:
          - {name: id, in: query, required: true, schema: {type: string}}
          - {name: k, in: query, schema: {type: integer, minimum: 1, maximum: 100, default: 10}}
          - {name: page, in: query, schema: {type: integer, minimum: 0, default: 0}}
        responses:
          200: {description: the nearest other documents, with matched tokens}
          404: {description: no such document}
        """
        from starlette.concurrency import run_in_threadpool

        p = request.query_params
        try:
            result = await run_in_threadpool(service.similar, p.get("id"), p.get("k", 10), p.get("page", 0), p)
        except HttpError as exc:
            return error(exc)
        return JSONResponse(result)

    async def search_image(request):
        """
        summary: Search by an example image (an upload as the POST body, or url=/image/ROOT/PATH).
        parameters:
          - {name: url, in: query, schema: {type: string}, description: "GET: a file of the index's folders"}
          - {name: k, in: query, schema: {type: integer, minimum: 1, maximum: 100, default: 10}}
          - {name: folder, in: query, schema: {type: string}}
          - {name: taken_after, in: query, schema: {type: string, format: date}}
          - {name: taken_before, in: query, schema: {type: string, format: date}}
          - {name: camera, in: query, schema: {type: string}}
        responses:
          200: {description: the nearest documents, with matched tokens}
          413: {description: the image is over the byte limit}
          422: {description: "not an image, too many pixels, or a bad filter"}
        """
        from starlette.concurrency import run_in_threadpool

        p = request.query_params
        limit = service.config.max_upload_bytes
        try:
            if request.method == "POST":
                declared = request.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise HttpError(413, f"The image is {declared} bytes; the limit is {limit}.")
                chunks, size = [], 0
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise HttpError(413, f"The image is over the limit of {limit} bytes.")
                    chunks.append(chunk)
                data, source = b"".join(chunks), "upload"
            else:
                url = p.get("url") or ""
                if not url.startswith("/image/") or files is None:
                    raise HttpError(422, "url must be an /image/ROOT/PATH address of this index's folders.")
                try:
                    path = files.resolve(url[len("/image/"):])
                except OutsideRoots:
                    raise HttpError(404, "No such image in this index's folders.") from None
                if not path.is_file() or path.stat().st_size > limit:
                    raise HttpError(404 if not path.is_file() else 413, "The image is missing or over the limit.")
                data, source = await run_in_threadpool(path.read_bytes), url
            result = await run_in_threadpool(service.search_image, data, p.get("k", 10), p.get("page", 0), p, source)
        except HttpError as exc:
            return error(exc)
        return JSONResponse(result)

    async def info(request):
        """
        summary: What this index offers (modes, k limit, documents, encoder).
        responses: {200: {description: the service's facts}}
        """
        return JSONResponse(service.info())

    def image_file(request):
        if files is None:
            raise OutsideRoots(request.path_params["path"])
        return files.resolve(request.path_params["path"])

    async def thumb(request):
        from starlette.concurrency import run_in_threadpool

        try:
            path = image_file(request)
        except OutsideRoots:
            return JSONResponse({"error": "not found"}, status_code=404)
        made = await run_in_threadpool(files.thumbnail, path)
        if made is None:  # gone or unreadable since indexing
            return Response(PLACEHOLDER_SVG, media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})
        return FileResponse(made, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})

    async def image(request):
        try:
            path = image_file(request)
        except OutsideRoots:
            return JSONResponse({"error": "not found"}, status_code=404)
        if not path.is_file():
            return Response(PLACEHOLDER_SVG, media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})

    async def healthz(request):
        return JSONResponse({"status": "ok", "documents": service.searcher.backend.count()})

    routes = [Route("/", page), Route("/static/{name}", static), Route("/v1/search", search),
              Route("/v1/similar", similar), Route("/v1/search-image", search_image, methods=["GET", "POST"]),
              Route("/v1/info", info), Route("/thumb/{path:path}", thumb),
              Route("/image/{path:path}", image), Route("/healthz", healthz)]
    schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "lsr search", "version": "1"}})

    async def openapi(request):
        return JSONResponse(schemas.get_schema(routes=routes))

    routes.append(Route("/openapi.json", openapi, include_in_schema=False))
    return Starlette(routes=routes, middleware=[Middleware(Guard, token=token)])


class Guard:
    """ASGI middleware: the bearer token (when set) on every request, and the security headers on every reply."""

    def __init__(self, app, token: str | None = None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.token and not self._allowed(scope):
            from starlette.responses import JSONResponse

            reply = JSONResponse({"error": "this service needs a token: send 'Authorization: Bearer TOKEN', or open "
                                           "/?token=TOKEN once in the browser"}, status_code=401,
                                 headers={"WWW-Authenticate": "Bearer"})
            return await self._secured(reply)(scope, receive, send)

        async def send_secured(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_secured)

    def _allowed(self, scope) -> bool:
        from starlette.requests import HTTPConnection

        conn = HTTPConnection(scope)
        if scope["path"] == "/" and conn.query_params.get("token"):
            return hmac.compare_digest(conn.query_params["token"], self.token)
        sent = conn.headers.get("authorization", "")
        bearer = sent[7:] if sent.lower().startswith("bearer ") else conn.cookies.get(COOKIE, "")
        return hmac.compare_digest(bearer, self.token)

    @staticmethod
    def _secured(reply):
        reply.headers.update(SECURITY_HEADERS)
        return reply
