"""Files and folders in, files out: which outputs go where, refusing to overwrite inputs, and a
per-file result so one bad image never stops a folder."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .errors import SrnlError
from .imageio import EXTENSION_FORMATS, Picture, read_picture, write_picture

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm",
                  ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".ico", ".dib", ".pcx", ".sgi"}


@dataclass
class Job:
    src: Path
    dst: Path


@dataclass
class Result:
    src: Path
    dst: Path
    in_size: tuple[int, int] | None = None
    out_size: tuple[int, int] | None = None
    seconds: float = 0.0
    error: str | None = None


def find_images(folder: Path, recursive: bool) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern)
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _output_name(src: Path, suffix: str, ext: str) -> str:
    if ext == "same":
        ext = src.suffix.lower() if src.suffix.lower() in EXTENSION_FORMATS else ".png"
    else:
        ext = "." + ext.lstrip(".").lower()
    return f"{src.stem}{suffix}{ext}"


def plan_jobs(inputs: Iterable[Path], output: Path | None, suffix: str, ext: str = "same",
              recursive: bool = False) -> list[Job]:
    """Map inputs to output paths. `output` names a file for a single input file with an image
    extension, otherwise a folder (the tree under each input folder is kept)."""
    sources: list[tuple[Path, Path]] = []  # (file, path relative to the output folder)
    for inp in map(Path, inputs):
        if inp.is_dir():
            found = find_images(inp, recursive)
            if not found:
                raise SrnlError(f"{inp}: no images found" + ("" if recursive else
                                " (use --recursive to descend into sub-folders)"))
            sources += [(f, f.relative_to(inp)) for f in found]
        elif inp.exists():
            sources.append((inp, Path(inp.name)))
        else:
            raise SrnlError(f"{inp}: no such file or folder")
    single_file = len(sources) == 1 and not any(Path(i).is_dir() for i in inputs)
    if output is not None and single_file and output.suffix.lower() in EXTENSION_FORMATS \
            and not output.is_dir():
        return [Job(sources[0][0], output)]
    jobs = []
    for src, rel in sources:
        folder = src.parent if output is None else output / rel.parent
        jobs.append(Job(src, folder / _output_name(src, suffix, ext)))
    return jobs


def run_job(job: Job, work: Callable[[Picture], Picture], *, overwrite: bool = False,
            quality: int = 95, max_pixels: int | None = None) -> Result:
    start = time.perf_counter()
    result = Result(job.src, job.dst)
    try:
        if job.dst.exists() and job.dst.resolve() == job.src.resolve():
            raise SrnlError(f"{job.dst}: output would overwrite its input; refused")
        if job.dst.exists() and not overwrite:
            raise SrnlError(f"{job.dst}: exists (use --overwrite to replace it)")
        pic = read_picture(job.src, max_pixels)
        result.in_size = pic.size
        out = work(pic)
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        write_picture(out, job.dst, quality)
        result.out_size = out.size
    except SrnlError as e:
        result.error = str(e)
    except OSError as e:
        result.error = f"{job.dst}: cannot write ({e.strerror or e})"
    result.seconds = time.perf_counter() - start
    return result
