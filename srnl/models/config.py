"""The one description of a network: saved inside every checkpoint so a file alone rebuilds it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import Enum

class Task(str, Enum):
    """What a network does. A str, so a config reads and writes as plain text in TOML and in
    checkpoints, and compares equal to "sr" / "denoise"."""
    SR = "sr"
    DENOISE = "denoise"

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


def unknown_fields(cls, d: dict) -> list[str]:
    """Keys of `d` that are not fields of the dataclass `cls`, sorted."""
    return sorted(set(d) - {f.name for f in fields(cls)})


@dataclass(frozen=True)
class ModelConfig:
    task: Task = Task.SR
    scale: int = 2
    channels: int = 3
    features: int = 32
    blocks: int = 6
    res_scale: float = 1.0
    # Indices of residual blocks after which a non-local module is inserted.
    nonlocal_after: tuple[int, ...] = (2,)
    nonlocal_down: int = 4
    nonlocal_pool: int = 2
    nonlocal_heads: int = 1
    nonlocal_dim: int = 16
    nonlocal_shared_qk: bool = False
    # Values are the key's block of query cells at query resolution (cross-scale), not pooled.
    nonlocal_cross_scale: bool = False
    # Side of the neighbourhood each query and key embedding sees on its grid (1: one cell).
    nonlocal_patch: int = 1
    # Channels carried through the upsampler and into the output conv (0: `features`); fewer
    # make the high-resolution end, the costliest per pixel, cheaper.
    upsample_features: int = 0
    # x4 as two x2 pixel-shuffle stages (EDSR) rather than one x16-channel conv.
    x4_two_stages: bool = True
    # The denoiser runs its body on pixel-unshuffled input, at half resolution.
    denoise_unshuffle: int = 2
    # Residual-block convs trained as 3x3 + 1x1 + identity branches, folded into one 3x3 to run.
    # Off in every recipe: in a 4,000-step x2 ablation they cost 0.9 dB on B100 (README).
    rep_branches: bool = False
    # A blind denoiser carries a noise-level estimator and fills in the level where none is given.
    blind: bool = False
    estimator_features: int = 24

    def __post_init__(self):
        try:
            object.__setattr__(self, "task", Task(self.task))
        except ValueError:
            raise ValueError(f"task must be one of {[t.value for t in Task]}, "
                             f"got {self.task!r}") from None
        if self.task == "sr" and self.scale not in (2, 3, 4):
            raise ValueError(f"super-resolution scale must be 2, 3 or 4, got {self.scale}")
        if self.task == "denoise" and self.scale != 1:
            raise ValueError("a denoiser has scale 1")
        if self.blind and self.task != "denoise":
            raise ValueError("only a denoiser can be blind")
        bad = [i for i in self.nonlocal_after if not 0 <= i < self.blocks]
        if bad:
            raise ValueError(f"non-local positions {bad} are outside blocks 0..{self.blocks - 1}")
        object.__setattr__(self, "nonlocal_after", tuple(sorted(set(self.nonlocal_after))))

    @property
    def takes_level(self) -> bool:
        """Whether the network takes a noise-level map beside the image."""
        return self.task == "denoise"

    @property
    def pad_minimum(self) -> int:
        return 0

    @property
    def pad_multiple(self) -> int:
        """Input sides must be a multiple of this; the inference layer pads to it."""
        return self.denoise_unshuffle if self.task == "denoise" else 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["task"] = self.task.value
        d["nonlocal_after"] = list(self.nonlocal_after)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        unknown = unknown_fields(cls, d)
        if unknown:
            raise ValueError(f"unknown model config keys: {unknown}")
        d = dict(d)
        if "nonlocal_after" in d:
            d["nonlocal_after"] = tuple(d["nonlocal_after"])
        return cls(**d)
