"""What every command shares: the Typer app, the consoles, the option types, and turning options
into the library's settings. Nothing here imports torch: `srnl --help` must start fast."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand
from rich.console import Console
from rich.table import Column, Table
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from ..errors import SrnlError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Image super-resolution and denoising with non-local attention.")


def _argument_name(param) -> str:
    name = param.metavar or param.name.upper()
    name = name if param.required else f"[{name}]"
    return name + ("..." if param.nargs != 1 and not name.endswith("...") else "")


class Command(TyperCommand):
    """Help in the usual shape at any width: `srnl upscale [OPTIONS] INPUT...` (Typer writes
    `{inputs}...`), and each argument listed by its name alone, not its Python type."""

    def _arguments(self, ctx) -> list:
        return [p for p in self.get_params(ctx) if p.param_type_name == "argument"]

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [self.options_metavar, *(_argument_name(p) for p in self._arguments(ctx))]

    def format_options(self, ctx, formatter) -> None:
        arguments = [(_argument_name(p), p.help or "") for p in self._arguments(ctx)]
        options = [record for p in self.get_params(ctx) if p.param_type_name != "argument"
                   if (record := p.get_help_record(ctx))]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def command(**kwargs):
    """`app.command` with srnl's help layout."""
    return app.command(cls=Command, **kwargs)


console = Console(stderr=True)
stdout = Console()

# Library settings whose flag allows what an error refused; any other setting an error names is
# the one whose value was refused.
REMEDIES = {"overwrite": "--overwrite", "max_pixels": "--max-pixels", "resume": "--resume",
            "model": "--model"}


def error_text(message: str, option: str | None = None) -> str:
    """An error as the command line says it, in its own flags."""
    if option in REMEDIES:
        return f"{message} (use {REMEDIES[option]})"
    return f"--{option.replace('_', '-')}: {message}" if option else message


def print_error(message: str, option: str | None = None) -> None:
    """One line on standard error; brackets in it (a file name, `srnl[web]`) are not markup."""
    from rich.markup import escape

    console.print(f"[red]error:[/] {escape(error_text(message, option))}", soft_wrap=True,
                  highlight=False)


Inputs = Annotated[list[Path], typer.Argument(
    metavar="INPUT", help="Image files and/or folders; - reads one image from standard input.", show_default=False)]
Output = Annotated[Optional[str], typer.Option("--output", "-o", metavar="PATH",
                   help="Output file (one input), folder (an existing one, a name ending with / "
                        "or without extension: created if missing), or - for standard output "
                        "(PNG unless --ext).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m",
                     help="Shipped model name, srnl model file, or any model file spandrel knows (.pth, .safetensors).")]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")]
Ext = Annotated[str, typer.Option(help="Output format: png, jpg, webp, tif, bmp or same "
                                       "(the input's; PNG where it cannot be written).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (never an input).")]
Tile = Annotated[str, typer.Option(help="auto: tile only if over the memory budget; 0: never; "
                                        "N (64 or more): N x N input tiles.")]
TileOverlap = Annotated[int, typer.Option(help="Overlap between tiles, in input pixels (at most "
                                               "half the tile).")]
Ensemble = Annotated[bool, typer.Option("--self-ensemble", help="Average the 8 flips/transposes.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
Threads = Annotated[Optional[int], typer.Option(help="CPU threads (default: all cores).")]
Quality = Annotated[int, typer.Option(help="JPEG/WebP quality.")]
MaxPixels = Annotated[Optional[int], typer.Option(
    help="Refuse images with more pixels (decompression bomb guard).")]
SkipExisting = Annotated[bool, typer.Option(
    "--skip-existing", help="Keep outputs that already exist and go on with the rest (to resume a folder job).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary; "
                                                           "errors are still shown.")]
JsonSummary = Annotated[Optional[Path], typer.Option(
    "--json", help="Write a summary of every file (input, output, sizes, seconds, status, "
                   "error, note) as JSON.")]


def runtime(device: str, threads: int | None) -> str:
    """Apply --threads and resolve --device, the same way for every command."""
    from ..runtime import resolve_device, use_threads

    use_threads(threads)
    return resolve_device(device)


def inference_options(tile: str, overlap: int, self_ensemble: bool):
    """--tile, --tile-overlap and --self-ensemble as the library's InferenceOptions."""
    from ..infer import InferenceOptions

    if tile != "auto" and not tile.isdigit():
        raise SrnlError(f"--tile must be auto, 0 or a number, got {tile!r}")
    return InferenceOptions(tile if tile == "auto" else int(tile), overlap, self_ensemble)


def numbers(text: str, kind: type, option: str) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise SrnlError(f"{option} must be comma-separated numbers, got {text!r}")
    return values


def folding_table(*headers: str, title: str | None = None) -> Table:
    """A rich table whose cells fold onto more lines rather than cut a file name at 80 columns."""
    return Table(*(Column(h, overflow="fold") for h in headers), title=title)


def progress(quiet: bool = False) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                    # Off the terminal a bar cannot redraw: it would only leave blank lines.
                    disable=quiet or not console.is_terminal)
