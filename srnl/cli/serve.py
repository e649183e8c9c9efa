"""`srnl serve`: the web app, for people who do not use a terminal."""
from __future__ import annotations

import importlib.util
import socket
from typing import Annotated

import typer

from ..errors import SrnlError
from .common import Device, Threads, Tile, command, console, inference_options, runtime, stdout

WEB_MODULES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python-multipart": "python_multipart"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound here so that a busy port is one line and --port 0 works."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise SrnlError(f"cannot listen on {host}:{port}: {e.strerror or e}", option="port") from None
    return sock


@command()
def serve(host: Annotated[str, typer.Option(
              help="Address to listen on; anything but localhost lets other machines in.")]
          = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 7860,
          max_pixels: Annotated[int, typer.Option(
              help="Refuse images with more pixels, checked before decoding.")] = 16_000_000,
          max_upload_mb: Annotated[float, typer.Option(
              help="Refuse uploads over this many megabytes.")] = 100,
          tile: Tile = "auto", device: Device = "auto", threads: Threads = None):
    """Upscale and denoise in a local web page (and its HTTP API, for scripts).

    One image is restored at a time; the others wait their turn in a queue."""
    missing = [name for name, module in WEB_MODULES.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        raise SrnlError(f"srnl serve needs the web extra ({', '.join(missing)} missing): "
                        "pip install 'srnl[web]'")
    if max_pixels < 1 or max_upload_mb <= 0:
        raise SrnlError("--max-pixels and --max-upload-mb must be positive")
    import uvicorn

    from ..web.app import create_app
    from ..web.queue import JobQueue

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            # Jobs end first, so that the graceful shutdown has no request to wait for.
            queue.stop()
            super().handle_exit(sig, frame)

    from ..infer import DEFAULT_OVERLAP

    queue = JobQueue()
    app = create_app(max_pixels, int(max_upload_mb * 1e6), runtime(device, threads),
                     inference_options(tile, DEFAULT_OVERLAP, False), queue)
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    if host not in LOCAL_HOSTS:
        console.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this "
                      "machine can use it", highlight=False)
    shown = f"[{host}]" if ":" in host else host
    stdout.print(f"srnl serve: http://{shown}:{bound}/ (Ctrl-C to stop)", highlight=False)
    server = Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn stopped gracefully and then raised the signal again
    finally:
        sock.close()
    stdout.print("srnl serve: stopped", highlight=False)
