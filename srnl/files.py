"""Files and folders in, files out: which outputs go where, refusing to overwrite inputs, and a
per-file result so one bad image never stops a folder. Everything that can be known before the
first image is read (a mistyped format, two inputs bound for one output) is refused at planning.

`-` stands for standard input (as the only input) or standard output (as the output)."""
from __future__ import annotations

import io
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .atomic import cannot_write, write_text
from .errors import Interrupted, SrnlError
from .distributed import Dist, gather, process_group, shard
from .imageio import (EXTENSION_FORMATS, IMAGE_SUFFIXES, Picture, find_images, output_extension,
                      read_picture, write_picture, write_picture_to)

STDIO = Path("-")


@dataclass
class Job:
    src: Path
    dst: Path
    ext: str = ".png"  # the format written when dst is standard output


@dataclass
class Result:
    src: Path
    dst: Path
    in_size: tuple[int, int] | None = None
    out_size: tuple[int, int] | None = None
    seconds: float = 0.0
    error: str | None = None
    skipped: bool = False  # the output existed and was kept
    stopped: str | None = None  # "interrupted" or "not started": the job was stopped by a signal
    note: str | None = None  # what the work chose for this image (e.g. the noise level used)
    option: str | None = None  # the setting that would allow what the error refused
    model: str | None = None  # the model that ran on this image

    @property
    def status(self) -> str:
        if self.stopped:
            return self.stopped
        return "failed" if self.error else "skipped" if self.skipped else "ok"

    def to_dict(self) -> dict:
        size = lambda s: list(s) if s else None
        return {"input": str(self.src), "output": str(self.dst), "input_size": size(self.in_size),
                "output_size": size(self.out_size), "seconds": round(self.seconds, 4),
                "status": self.status, "error": self.error, "note": self.note,
                "model": self.model}


def _output_name(src: Path, suffix: str, ext: str | None) -> str:
    if ext is None:
        ext = src.suffix.lower() if src.suffix.lower() in EXTENSION_FORMATS else ".png"
    return f"{src.stem}{suffix}{ext}"


def _names_a_file(output: Path) -> bool:
    return output.suffix.lower() in IMAGE_SUFFIXES | set(EXTENSION_FORMATS) and not output.is_dir()


def _output_path(output: str | Path | None) -> Path | None:
    """The output as given, checked: a folder when it exists as one, ends with a separator or has
    no extension; otherwise a file, whose extension must be an image format's (a typo such as
    .jepg must not quietly become a folder)."""
    if output is None:
        return None
    text = str(output)
    path = Path(text)
    if (path == STDIO or path.is_dir() or text.endswith(("/", os.sep)) or not path.suffix
            or path.suffix.lower() in IMAGE_SUFFIXES):
        return path
    raise SrnlError(f"{text}: unknown image extension {path.suffix!r} (use one of "
                    f"{', '.join(e.lstrip('.') for e in EXTENSION_FORMATS)}; end a folder's "
                    "name with / to write into it)")


def _file_output(output: Path, ext: str | None) -> Path:
    """`output` as a single output file, its extension checked against `ext`."""
    fmt = EXTENSION_FORMATS.get(output.suffix.lower())
    if fmt is None:
        try:
            output_extension(output.suffix)
        except SrnlError as e:  # it lists the supported formats
            raise SrnlError(f"{output}: {e}") from None
    if ext is not None and EXTENSION_FORMATS[ext] != fmt:
        raise SrnlError(f"{output}: the output's extension says {fmt}, but the format asked for "
                        f"is {EXTENSION_FORMATS[ext]}")
    return output


def _sources(inputs: list[Path], output: Path | None, recursive: bool
             ) -> list[tuple[Path, Path, bool]]:
    """(file, path relative to the output folder, whether it was found in a folder)."""
    sources = []
    for inp in inputs:
        if inp.is_dir():
            inside = (output is not None and output.resolve() != inp.resolve()
                      and output.resolve().is_relative_to(inp.resolve()))
            found = find_images(inp, recursive, output if inside else None)
            if not found:
                raise SrnlError(f"{inp}: no images found" + ("" if recursive else
                                " (use --recursive to descend into sub-folders)"))
            sources += [(f, f.relative_to(inp), True) for f in found]
        elif inp.exists():
            sources.append((inp, Path(inp.name), False))
        else:
            raise SrnlError(f"{inp}: no such file or folder")
    return sources


def plan_jobs(inputs: Iterable[Path], output: str | Path | None, suffix: str, ext: str = "same",
              recursive: bool = False) -> list[Job]:
    """Map inputs to output paths. `output` names a file for a single input file with an image
    extension, otherwise a folder (the tree under each input folder is kept): an existing one, a
    name ending with a separator, or one with no extension; any other extension is refused.
    Files found in a folder that are this job's own outputs (from an earlier run) are left out."""
    inputs = [Path(i) for i in inputs]
    output = _output_path(output)
    if "/" in suffix or os.sep in suffix or (os.altsep and os.altsep in suffix):
        raise SrnlError(f"the suffix {suffix!r} must not contain a path separator")
    ext = None if ext == "same" else output_extension(ext)
    if STDIO in inputs:
        if len(inputs) > 1:
            raise SrnlError("'-' (standard input) must be the only input")
        if output is None or not (output == STDIO or _names_a_file(output)):
            raise SrnlError("an image read from standard input needs an output file, "
                            "or '-' for standard output")
        return [Job(STDIO, output if output == STDIO else _file_output(output, ext),
                    ext or ".png")]
    sources = _sources(inputs, output, recursive)
    single = len(sources) == 1 and not any(i.is_dir() for i in inputs)
    if output == STDIO or (output is not None and _names_a_file(output)):
        if not single:
            what = (f"there are {len(sources)} input images" if len(sources) > 1
                    else "the input is a folder")
            raise SrnlError(f"{output}: names one file, but {what} (name a folder to write "
                            "several)")
        if output == STDIO:
            return [Job(sources[0][0], STDIO, ext or ".png")]
        return [Job(sources[0][0], _file_output(output, ext))]
    if output is not None and output.exists() and not output.is_dir():
        raise SrnlError(f"{output}: exists and is not a folder")
    planned = [(src, (src.parent if output is None else output / rel.parent)
                / _output_name(src, suffix, ext), scanned) for src, rel, scanned in sources]
    own_outputs = {dst.resolve(): src for src, dst, _ in planned}
    jobs, by_dst = [], {}
    for src, dst, scanned in planned:
        maker = own_outputs.get(src.resolve())
        if maker is not None and maker != src:
            if scanned:
                continue
            raise SrnlError(f"{src}: is an input and also the output of {maker}")
        other = by_dst.setdefault(dst.resolve(), src)
        if other != src:
            raise SrnlError(f"{other} and {src} would both be written to {dst} "
                            "(choose another suffix or format, or process them separately)")
        jobs.append(Job(src, dst))
    return jobs


def _read(job: Job, max_pixels: int | None) -> Picture:
    if job.src == STDIO:
        # Pillow needs to seek; a pipe cannot.
        return read_picture(io.BytesIO(sys.stdin.buffer.read()), max_pixels, "standard input")
    return read_picture(job.src, max_pixels)


def _write(job: Job, out: Picture, quality: int) -> None:
    if job.dst == STDIO:
        write_picture_to(out, sys.stdout.buffer, job.ext, quality)
        sys.stdout.buffer.flush()
        return
    job.dst.parent.mkdir(parents=True, exist_ok=True)
    write_picture(out, job.dst, quality)


# The work done on each picture: (restored picture, the model that ran, a note for the summary
# or None).
Work = Callable[[Picture], "tuple[Picture, str, str | None]"]


@dataclass(frozen=True)
class WriteOptions:
    """What may happen to outputs: replace existing ones, keep them (and go on), or refuse."""
    overwrite: bool = False
    skip_existing: bool = False
    quality: int = 95
    max_pixels: int | None = None

    def __post_init__(self):
        if self.overwrite and self.skip_existing:
            raise SrnlError("overwriting and skipping existing outputs contradict each other: "
                            "choose one", option="skip_existing")
        if not 1 <= self.quality <= 100:
            raise SrnlError(f"the JPEG/WebP quality must be 1-100, got {self.quality}",
                            option="quality")


def run_job(job: Job, work: Work, options: WriteOptions = WriteOptions()) -> Result:
    """Read, work, write one file. `skip_existing` keeps an existing output (and counts the job
    as skipped); otherwise an existing output is an error unless `overwrite`."""
    overwrite, skip_existing = options.overwrite, options.skip_existing
    quality, max_pixels = options.quality, options.max_pixels
    start = time.perf_counter()
    result = Result(job.src, job.dst)
    try:
        if job.dst != STDIO and job.dst.exists():
            if job.src != STDIO and job.dst.resolve() == job.src.resolve():
                raise SrnlError(f"{job.dst}: output would overwrite its input; refused")
            if skip_existing:
                result.skipped = True
                return result
            if not overwrite:
                raise SrnlError(f"{job.dst}: exists", option="overwrite")
        pic = _read(job, max_pixels)
        result.in_size = pic.size
        out, result.model, result.note = work(pic)
        _write(job, out, quality)
        result.out_size = out.size
    except SrnlError as e:
        result.error, result.option = str(e), e.option
    except OSError as e:
        result.error = str(cannot_write(job.dst, e))
    finally:
        result.seconds = time.perf_counter() - start
    return result


def write_summary(results: list[Result], path: Path) -> None:
    """Every file's input, output, sizes, seconds, status, error and note, as JSON."""
    write_text(path, json.dumps([r.to_dict() for r in results], indent=1) + "\n")


class JobInterrupted(Interrupted):
    """Interrupted, with every job's result: those not run are "interrupted" (the one under way)
    or "not started"."""

    def __init__(self, results: list[Result]):
        super().__init__(Counter(r.status for r in results))
        self.results = results


@dataclass
class FileReporter:
    """How a file job tells its progress (all optional; called on every process)."""
    start: Callable[[int, Dist], None] | None = None     # (files of this process, the process)
    file: Callable[[Job], None] | None = None            # before each file
    tile: Callable[[int, int], None] | None = None       # (tiles done, tiles) within a file
    result: Callable[[Result], None] | None = None       # after each file


def run_files(jobs: list[Job], work_for: Callable[[Callable | None], Work],
              options: WriteOptions = WriteOptions(),
              report: FileReporter = FileReporter()) -> tuple[list[Result], bool]:
    """Run every job, one bad file never stopping the rest: (every result, whether this is the
    main process). Under torchrun each process takes a disjoint share of the files and every
    process gets all results. `work_for(on_tile)` makes the work for one file."""
    with process_group() as d:
        mine = shard(jobs, d)
        if report.start:
            report.start(len(mine), d)
        results = []
        try:
            for job in mine:
                if report.file:
                    report.file(job)
                results.append(run_job(job, work_for(report.tile), options))
                if report.result:
                    report.result(results[-1])
        except KeyboardInterrupt:
            stopped = [Result(job.src, job.dst, stopped="not started") for job in mine[len(results):]]
            if stopped:
                stopped[0].stopped = "interrupted"
            raise JobInterrupted(results + stopped) from None
        return gather(results, d), d.main
