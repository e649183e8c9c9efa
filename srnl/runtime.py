"""Process-wide settings, for the process that owns them (the `srnl` command, `srnl bench`'s
measuring worker): the device and thread count every command resolves the same way, and glibc's
allocator (elsewhere than glibc the allocator settings do nothing).

A 512x512 feature map with 32 channels is 33.5 MB, above the largest mmap threshold glibc allows
(32 MB), so by default every such tensor is a fresh mapping whose pages the kernel faults in and
zeroes again: x2 at 512x512 took 1.2 s with the default and 0.74 s with `keep_freed_memory`."""
from __future__ import annotations

import ctypes
import os

from .errors import SrnlError

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4


def _mallopt(param: int, value: int) -> None:
    try:
        ctypes.CDLL("libc.so.6").mallopt(param, value)
    except (OSError, AttributeError):
        pass


def keep_freed_memory() -> None:
    """Serve every block from the heap and keep freed memory for the next tensor of that size,
    instead of mapping and faulting in fresh pages for each one. Peak memory stays what the
    largest step needs; the process simply does not return it before it exits."""
    _mallopt(M_MMAP_MAX, 0)
    _mallopt(M_TRIM_THRESHOLD, 2**31 - 1)


def release_freed_memory() -> None:
    """Hand the memory freed since the last call back to the system (all of glibc's arenas): a
    long-running server keeps `keep_freed_memory`'s speed within a job and returns to its idle
    size between jobs."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def exact_memory_accounting() -> None:
    """Make glibc hand every large block back to the system when it is freed. Its default raises
    the mmap threshold after frees and then serves new tensors from memory the process already
    holds, so peak-RSS growth would read near zero for anything after the first big run."""
    _mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def resolve_device(device: str = "auto") -> str:
    """"auto" (a GPU if PyTorch finds one, else the CPU), "cpu", "cuda" (under torchrun, this
    process's GPU) or "cuda:N", refused when PyTorch finds no GPU."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not (device == "cpu" or device == "cuda" or
            (device.startswith("cuda:") and device[5:].isdigit())):
        raise SrnlError(f"unknown device {device!r} (auto, cpu, cuda or cuda:N)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SrnlError(f"device {device!r}: PyTorch finds no CUDA GPU here (use cpu or auto)")
    if device == "cuda":
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def use_threads(threads: int | None) -> None:
    """Run on this many CPU threads (None: PyTorch's default, all cores)."""
    if threads is None:
        return
    if threads < 1:
        raise SrnlError(f"must be 1 or more, got {threads}", option="threads")
    import torch

    torch.set_num_threads(threads)
