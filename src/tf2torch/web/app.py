"""`tf2torch serve`: the repository as a read-only web app (Starlette, ASGI).

Routes (every page also answers under `…/index.html`, the static site's names):

    GET  /                               index: every package, filter by text and format
    GET  /models/{name}/                 the package's page
    GET  /models/{name}/files/{file}     a download: one of the fixed names a package holds
    POST /models/{name}/try              try it: an image (or sample, or .npy) → the page with results
    GET  /results/{token}/{file}         a recent result's annotated image or .npy output
    GET  /api/models, /api/models/{name}, POST /api/models/{name}/predict    the same as JSON
    GET  /static/…                       CSS, the filter script, the sample photos

Nothing writes to the repository. Inference and model loading run on `concurrency` worker
threads of the app's own, never on the event loop; a refusal is a 4xx page or JSON
with one readable line, and an unexpected error a 500 page without a traceback.
"""

from __future__ import annotations

import asyncio
import importlib.resources
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tf2torch.errors import Tf2TorchError
from tf2torch.packages import repository
from tf2torch.web import pages
from tf2torch.web.catalog import Catalog, Entry, NotServed
from tf2torch.web.guards import BodyLimit, HostCheck, SecurityHeaders
from tf2torch.web.runner import ModelCache, ResultStore, TryResult, run_array, run_image
from tf2torch.web.uploads import Limits, decode_array, decode_image, is_npy

SITE = pages.Site(static=False)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class Settings:
    """How `create_app` serves: the repository home, limits, cache size, worker threads.

    `hosts`: the Host names answered (None: any; `tf2torch serve` on a loopback address
    answers loopback names only). `fast`: run the inference form (BatchNorm folded,
    channels-last; the same numbers).
    """

    home: Path = field(default_factory=repository.home)
    limits: Limits = field(default_factory=Limits)
    cache_size: int = 4
    concurrency: int = 2
    fast: bool = True
    hosts: tuple[str, ...] | None = None


class State:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog = Catalog(settings.home)
        self.models = ModelCache(settings.cache_size, fast=settings.fast,
                                 share=max(1, settings.concurrency))
        self.results = ResultStore()
        # A few threads of our own, not the shared pool: every thread that calls into torch
        # gets its own OpenMP team and oneDNN scratchpads, so the set must stay small and fixed
        # for memory to stay flat.
        self.workers = ThreadPoolExecutor(max(1, settings.concurrency), "tf2torch-try")

    def run(self, entry: Entry, data: bytes, filename: str) -> TryResult:
        """Blocking: decode the upload, load (or reuse) the model, run it."""
        card = entry.card
        if is_npy(data, filename):
            array = decode_array(data, filename, tuple(card.input["shape"]))
            result = run_array(self.models.get(entry), array, self.results)
        elif card.encoder is None:
            raise NotServed(415, f"{filename}: this package records no encoder, so it takes its "
                                 "input tensor as a .npy array, not an image")
        else:
            rgb = decode_image(data, filename, self.settings.limits)
            result = run_image(self.models.get(entry), rgb, self.results)
        result.input_name = filename
        return result


def root_for(path: str) -> str:
    """The relative way back to the site's top from the page at `path`."""
    return "../" * max(0, path.count("/") - 1)


def refusal(request_or_scope: Request | dict, error: NotServed) -> Response:
    scope = request_or_scope.scope if isinstance(request_or_scope, Request) else request_or_scope
    path = scope.get("path", "/")
    if path.startswith("/api/"):
        return JSONResponse({"status": error.status, "error": error.message}, error.status)
    title = _TITLES.get(error.status, "Refused")
    return HTMLResponse(pages.error_page(SITE, error.status, title, error.message, root_for(path)),
                        error.status)


_TITLES = {400: "Bad request", 403: "Not served", 404: "Not found", 405: "Method not allowed",
           413: "Too large", 415: "Not an image", 422: "Cannot use this input",
           500: "Server error"}


# --- pages ----------------------------------------------------------------------------------

async def index(request: Request) -> Response:
    state: State = request.app.state.tf2torch
    entries, unreadable = await anyio.to_thread.run_sync(state.catalog.entries)
    query = request.query_params.get("q", "")[:200]
    fmt = request.query_params.get("format", "")[:40]
    return HTMLResponse(pages.index_page(SITE, entries, unreadable, query, fmt))


async def model_page(request: Request) -> Response:
    state: State = request.app.state.tf2torch
    entry = await anyio.to_thread.run_sync(state.catalog.entry, request.path_params["name"])
    if not request.url.path.endswith("/") and not request.url.path.endswith("/index.html"):
        return RedirectResponse(request.url.path + "/", 308)
    return HTMLResponse(await anyio.to_thread.run_sync(pages.model_page, SITE, entry))


async def try_page(request: Request) -> Response:
    if request.method == "GET":  # a reload of a result page: back to the form
        return RedirectResponse("./#try", 303)
    state: State = request.app.state.tf2torch
    entry = await anyio.to_thread.run_sync(state.catalog.entry, request.path_params["name"])
    result, refused = None, None
    try:
        result = await _try(request, state, entry)
    except NotServed as error:  # the page again, the reason above the form
        refused = error
    page = await anyio.to_thread.run_sync(lambda: pages.model_page(
        SITE, entry, result=result, error=refused.message if refused else None))
    return HTMLResponse(page, refused.status if refused else 200)


async def _try(request: Request, state: State, entry: Entry) -> TryResult:
    if pages.tryable(entry) is None:
        raise NotServed(422, "this model takes several inputs; the page can only feed one")
    form = await request.form(max_files=1, max_fields=4)
    upload, sample = form.get("file"), form.get("sample")
    if isinstance(upload, UploadFile) and upload.filename:
        data, filename = await upload.read(), Path(upload.filename).name
    elif isinstance(sample, str) and sample and entry.card.encoder is not None:
        if sample not in pages.SAMPLES:
            raise NotServed(422, f"no sample named {sample!r}; the samples are "
                                 f"{', '.join(pages.SAMPLES)}")
        data, filename = _sample_bytes(sample), sample
    else:
        raise NotServed(422, "no input: choose a file to upload"
                        + (" or a sample" if entry.card.encoder is not None else ""))
    await form.close()
    return await asyncio.wrap_future(state.workers.submit(state.run, entry, data, filename))


def _sample_bytes(name: str) -> bytes:
    return (importlib.resources.files("tf2torch.web") / "static" / "samples" / name).read_bytes()


async def download(request: Request) -> Response:
    state: State = request.app.state.tf2torch
    _, served = state.catalog.file(request.path_params["name"],
                                       request.path_params["filename"])
    inline = served.spec.media_type.startswith(("image/", "application/json", "text/"))
    return FileResponse(served.path, media_type=served.spec.media_type, filename=served.name,
                        content_disposition_type="inline" if inline else "attachment")


async def result_file(request: Request) -> Response:
    state: State = request.app.state.tf2torch
    found = state.results.get(request.path_params["token"], request.path_params["filename"])
    if found is None:
        raise NotServed(404, "no such result: results are kept in memory for the last few "
                             "requests only; run the model again")
    data, media_type = found
    return Response(data, media_type=media_type, headers={"cache-control": "no-store"})


# --- JSON API -------------------------------------------------------------------------------

def _summary(entry: Entry) -> dict[str, Any]:
    card = entry.card
    return {"name": entry.name, "task": entry.task, "format": entry.format,
            "parameters": card.parameters, "multiply_adds": card.multiply_adds,
            "verification": entry.badge.kind, "created": card.created,
            "page": f"models/{entry.name}/"}


async def api_index(request: Request) -> Response:
    state: State = request.app.state.tf2torch
    entries, unreadable = await anyio.to_thread.run_sync(state.catalog.entries)
    return JSONResponse({"models": [_summary(e) for e in entries],
                         "not_served": [{"name": n, "reason": r} for n, r in unreadable]})


async def api_model(request: Request) -> Response:
    state: State = request.app.state.tf2torch
    entry = await anyio.to_thread.run_sync(state.catalog.entry, request.path_params["name"])
    card = asdict(entry.card)
    if entry.card.architecture.endswith("-graph"):  # the IR is large and of no use here
        card["config"] = {**card["config"], "graph": "…"}
    return JSONResponse({**_summary(entry), "card": card,
                         "files": [{"name": f.name, "size": f.size, "href": f"files/{f.name}"}
                                   for f in entry.files]})


async def api_predict(request: Request) -> Response:
    state: State = request.app.state.tf2torch
    entry = await anyio.to_thread.run_sync(state.catalog.entry, request.path_params["name"])
    return JSONResponse((await _try(request, state, entry)).to_dict())


# --- errors ---------------------------------------------------------------------------------

async def _not_served(request: Request, error: Exception) -> Response:
    assert isinstance(error, NotServed)
    return refusal(request, error)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return refusal(request, NotServed(error.status_code, str(error.detail)))


async def _package_error(request: Request, error: Exception) -> Response:
    return refusal(request, NotServed(422, f"the package cannot be used: {error}"))


async def _server_error(request: Request, error: Exception) -> Response:
    # Starlette re-raises after this, so the server's log has the traceback; the page has none
    return refusal(request, NotServed(500, "the server hit an unexpected error; the traceback is "
                                           "in the log of the terminal running tf2torch serve"))


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    routes = [
        Route("/", index), Route("/index.html", index),
        Route("/models/{name}", model_page), Route("/models/{name}/", model_page),
        Route("/models/{name}/index.html", model_page),
        Route("/models/{name}/try", try_page, methods=["GET", "POST"]),
        Route("/models/{name}/files/{filename}", download),
        Route("/results/{token}/{filename}", result_file),
        Route("/api/models", api_index), Route("/api/models/{name}", api_model),
        Route("/api/models/{name}/predict", api_predict, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("tf2torch.web", "static")]), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if settings.hosts is not None:
        middleware.append(Middleware(HostCheck, hosts=settings.hosts, refuse=refusal))
    middleware.append(Middleware(BodyLimit, limit=settings.limits.max_upload_bytes,
                                 refuse=refusal))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={
        NotServed: _not_served, HTTPException: _http_error, Tf2TorchError: _package_error,
        Exception: _server_error,
    })
    app.state.tf2torch = State(settings)
    return app
