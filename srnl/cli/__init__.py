"""The `srnl` command: parses, calls the library, prints. One module per group of commands, each
registering on the app of `common`; this module only starts it."""
from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from ..errors import Interrupted, SrnlError
from . import files, evaluate, train, info, serve  # noqa: F401,I001  (each registers its commands)
from .common import app, console, print_error, stdout


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        stdout.print(f"srnl {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Show the version and exit.")] = False):
    """Image super-resolution and denoising with non-local attention."""


def _terminate(signum, frame) -> None:
    # As Ctrl-C: unwinding runs the `finally` blocks that delete half-written temporary files.
    raise KeyboardInterrupt


def main() -> None:
    from ..runtime import keep_freed_memory

    keep_freed_memory()
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except SrnlError as e:
        print_error(str(e), e.option)
        sys.exit(2)
    except Interrupted as e:
        console.print(f"[red]interrupted:[/] {e}", highlight=False)
        sys.exit(130)
    except SystemExit as e:
        if e.code == 130:  # Typer's exit after a KeyboardInterrupt it caught itself
            console.print("[red]interrupted[/]")
        raise
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
