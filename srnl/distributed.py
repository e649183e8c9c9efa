"""Running under torchrun: which process this is, and how the processes share work and results."""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


@contextmanager
def process_group(backend: str = "gloo") -> Iterator[Dist]:
    """Join torchrun's process group when WORLD_SIZE says there is one (a single process
    otherwise) and leave it on the way out: a gloo group still alive at interpreter exit can
    abort the process ("terminate called without an active exception") after its work is done."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield Dist()
        return
    owner = not dist.is_initialized()
    if owner:
        dist.init_process_group(backend)
    try:
        yield Dist(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))
    finally:
        if owner:
            dist.destroy_process_group()


def shard(items: list, d: Dist) -> list:
    """This process's disjoint share: every world-th item from its rank."""
    return items[d.rank::d.world]


def gather(items: list, d: Dist) -> list:
    """Every process's items, in rank order, on every process."""
    if d.world == 1:
        return items
    parts: list = [None] * d.world
    dist.all_gather_object(parts, items)
    return [x for part in parts for x in part]
