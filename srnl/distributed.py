"""Running under torchrun: which process this is, and how the processes share work and results."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str = "gloo") -> Dist:
    """Join torchrun's process group when WORLD_SIZE says there is one; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


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
