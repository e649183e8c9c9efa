"""`srnl serve`'s application: one static page and the HTTP API it uses.

A request's image goes through exactly what `srnl upscale`/`srnl denoise` run on a file (the same
task, the same reading, writing and metadata handling), in a private folder of its own that is
removed when the request ends; nothing a client sends is ever used as a path."""
from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
import shutil
import tempfile
import uuid
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..errors import SrnlError
from ..files import Result, WriteOptions, plan_jobs, run_job
from ..imageio import IMAGE_SUFFIXES
from ..infer import InferenceOptions
from ..models.registry import DEFAULTS, PRETRAINED
from ..tasks import Task, denoise_task, upscale_task
from .queue import Cancelled, JobQueue, QueueFull

STATIC = Path(__file__).parent / "static"
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
log = logging.getLogger("srnl.serve")


# Form fields both restoring endpoints take (module level: FastAPI reads the annotations).
Image = Annotated[UploadFile, File(description="The image (any format Pillow reads).")]
Ext = Annotated[str, Form(description="png, jpg, webp, tif, bmp or same (the input's; PNG "
                                      "where it cannot be written).")]
Quality = Annotated[int, Form(ge=1, le=100, description="JPEG/WebP quality.")]
Job = Annotated[str | None, Form(description="An id of the client's choosing for "
                                             "/api/progress/{job}.")]
Ensemble = Annotated[bool, Form(description="Average the 8 flips/transposes (8x slower).")]


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers)


class UploadLimit:
    """Refuse a request body over the limit before any of it is read. A body must declare its
    length (browsers and curl do): the server then never reads past it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            refusal = (error(411, "the request must give its Content-Length") if length is None
                       else error(413, f"the upload is over the server's limit of "
                                       f"{self.max_bytes / 1e6:g} MB")
                       if not length.isdigit() or int(length) > self.max_bytes else None)
            if refusal is not None:
                return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)


def _say(message: str, option: str | None) -> str:
    """An error as the API says it: in its form fields' names, and the server's own limits
    named as such."""
    if option == "max_pixels":
        return f"{message}: the server's --max-pixels"
    return f"{option}: {message}" if option else message


def _status(result: Result) -> int:
    if result.option == "max_pixels":
        return 413
    if result.in_size is None:
        return 400  # not an image, or a corrupt one
    return 422 if result.option else 500


def _download_name(client_name: str | None, output: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(client_name or "image").stem)[:100].strip("._")
    return (stem or "image") + output.name.removeprefix("input")


def _check_model(model: str | None, task: str) -> str | None:
    """Only the shipped models: a client names no file on this machine."""
    names = [p.name for p in PRETRAINED.values() if p.task == task]
    if model and model not in names:
        raise SrnlError(f"unknown model {model!r} (one of: {', '.join(names)})", option="model")
    return model or None


def create_app(max_pixels: int | None = 16_000_000, max_upload_bytes: int = 100_000_000,
               device: str = "cpu", options: InferenceOptions = InferenceOptions(),
               queue: JobQueue | None = None):
    queue = queue or JobQueue()

    @asynccontextmanager
    async def lifespan(app):
        previous = tempfile.tempdir
        root = app.state.root = Path(tempfile.mkdtemp(prefix="srnl-serve-"))
        # The parser spools large uploads to anonymous temporary files: in this folder too.
        tempfile.tempdir = str(root)
        try:
            yield
        finally:
            await queue.close()
            tempfile.tempdir = previous
            shutil.rmtree(root, ignore_errors=True)

    app = FastAPI(title="srnl", lifespan=lifespan, docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json")

    @app.exception_handler(SrnlError)
    async def bad_option(request, e: SrnlError):
        return error(503 if isinstance(e, QueueFull) else 422, _say(str(e), e.option),
                     {"Retry-After": "10"} if isinstance(e, QueueFull) else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        first = e.errors()[0]
        field = first["loc"][-1] if first.get("loc") else "request"
        return error(422, f"{field}: {first['msg']}")

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def internal(request, e: Exception):
        log.exception("internal error")
        return error(500, f"internal error ({type(e).__name__}); the server's console has the "
                          "details")

    async def restore(request: Request, image: UploadFile, task: Task, job: str | None,
                      ext: str, quality: int) -> Response:
        if job is not None and not JOB_ID.fullmatch(job):
            raise SrnlError("1-64 letters, digits, - or _", option="job")
        writing = WriteOptions(quality=quality, max_pixels=max_pixels)
        folder = Path(tempfile.mkdtemp(dir=request.app.state.root))
        try:
            suffix = Path(image.filename or "").suffix.lower()
            src = folder / ("input" + (suffix if suffix in IMAGE_SUFFIXES else ""))
            with src.open("wb") as f:
                await asyncio.to_thread(shutil.copyfileobj, image.file, f, 1 << 20)
            await image.close()
            planned = plan_jobs([src], None, task.suffix, ext)[0]
            try:
                result = await queue.run(job or uuid.uuid4().hex,
                                         lambda on_tile: run_job(planned, task.work_for(on_tile),
                                                                 writing),
                                         request.is_disconnected)
            except Cancelled:
                return error(503, "cancelled: the server is stopping or the client went away")
            if result.error:
                # The client's own name for its file, never this server's paths.
                message = result.error.replace(str(src), image.filename or "the image")
                return error(_status(result), _say(message.replace(f"{folder}/", ""),
                                                   result.option))
            return Response(planned.dst.read_bytes(),
                            media_type=mimetypes.guess_type(planned.dst.name)[0],
                            headers={
                "Content-Disposition":
                    f'attachment; filename="{_download_name(image.filename, planned.dst)}"',
                "X-Srnl-Model": result.model or "",
                "X-Srnl-Note": result.note or "",
                "X-Srnl-Seconds": f"{result.seconds:.3f}",
                "X-Srnl-Input-Size": "x".join(map(str, result.in_size)),
                "X-Srnl-Output-Size": "x".join(map(str, result.out_size))})
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    inference = lambda ensemble: replace(options, self_ensemble=ensemble)

    @app.post("/api/upscale", response_class=Response)
    async def upscale(request: Request, image: Image,
                      scale: Annotated[float | None, Form()] = None,
                      width: Annotated[int | None, Form()] = None,
                      height: Annotated[int | None, Form()] = None,
                      model: Annotated[str | None, Form()] = None,
                      self_ensemble: Ensemble = False, ext: Ext = "same", quality: Quality = 95,
                      job: Job = None):
        """Upscale by `scale` (any factor up to 4; default 2, or the model's own) or to `width`
        and/or `height`. Answers with the image, or JSON {"error": ...}."""
        task = upscale_task(scale, width, height, _check_model(model, "sr"), device,
                            inference(self_ensemble))
        return await restore(request, image, task, job, ext, quality)

    @app.post("/api/denoise", response_class=Response)
    async def denoise(request: Request, image: Image,
                      sigma: Annotated[str, Form(description="auto or 0-255.")] = "auto",
                      model: Annotated[str | None, Form()] = None,
                      self_ensemble: Ensemble = False, ext: Ext = "same", quality: Quality = 95,
                      job: Job = None):
        """Remove noise and JPEG artefacts at `sigma` (auto: the model's estimate per pixel)."""
        task = denoise_task(sigma, _check_model(model, "denoise"), device,
                            inference(self_ensemble))
        return await restore(request, image, task, job, ext, quality)

    @app.get("/api/models")
    async def models() -> list[dict]:
        """The shipped models: name, task (sr or denoise), scale, purpose, and whether it is the
        default for its task and scale."""
        defaults = set(DEFAULTS.values())
        return [{"name": p.name, "task": p.task, "scale": p.scale, "purpose": p.about,
                 "default": p.name in defaults} for p in PRETRAINED.values()]

    @app.get("/api/progress/{job}")
    async def progress(job: str):
        """A job's state while it waits (position: jobs ahead of it) or runs (tiles done)."""
        state = queue.progress(job)
        return state if state is not None else error(404, f"no job {job!r} is queued or running")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return UploadLimit(app, max_upload_bytes)

