"""What a model file says about itself: stored as a plain dict in the file (so any torch can read it
with weights_only=True) and read back as this dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class ModelCard:
    data: str = "-"                       # what it was trained on
    images: int | None = None             # training images used
    steps: int | None = None
    val_psnr: float | None = None         # best validation PSNR of the run
    train_seconds: float | None = None
    processes: int | None = None
    global_batch: int | None = None
    degradation: str | None = None        # the preset that made its training inputs
    metrics: dict = field(default_factory=dict)  # {"Set5": {"psnr": .., "ssim": ..}, ...}
    metrics_command: str | None = None    # how `metrics` were measured
    extra: dict = field(default_factory=dict)    # anything else the file holds

    @classmethod
    def from_dict(cls, d: dict | None) -> "ModelCard":
        known = {f.name for f in fields(cls)} - {"extra"}
        d = d or {}
        return cls(**{k: v for k, v in d.items() if k in known},
                   extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict:
        d = asdict(self)
        return {**{k: v for k, v in d.items() if k != "extra" and v is not None}, **self.extra}
