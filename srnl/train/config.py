"""Training configuration: one dataclass, filled from defaults < recipe or TOML file < command line,
written to the run directory and into every checkpoint."""
from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..degrade.spec import PRESETS_FILE, Degradation, load_preset
from ..errors import SrnlError
from ..models.config import ModelConfig, unknown_fields

RECIPES_DIR = Path(__file__).parent.parent / "recipes"


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    # How inputs are made from clean images: a preset of srnl/recipes/degradations.toml, with any
    # field overridden ([degradation] preset = "photo", jpeg_prob = 0.5).
    degradation: Degradation = field(default_factory=lambda: load_preset("bicubic"))
    data: tuple[str, ...] = ()
    val: str | None = None
    val_holdout: int = 0          # take this many training images out as the validation set
    val_limit: int = 0            # validate on at most this many images (0: all)
    val_sigma: float = 25.0
    sigma_min: float = 0.0        # denoising: per-patch sigma drawn uniformly from this range
    sigma_max: float = 55.0
    steps: int = 2000
    batch: int = 16               # per process; the global batch is batch x processes
    patch: int = 48               # LR patch side (denoising: the patch side)
    # Which image a patch comes from: every image equally likely ("image"), or in proportion to
    # its pixel count ("area"), so a 12 MP photo gives more patches than a 0.15 MP one.
    sampling: str = "image"
    lr: float = 1e-3
    schedule: str = "cosine"      # cosine (with warm-up) or multistep
    warmup: int = 100
    min_lr_ratio: float = 0.01
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    loss: str = "l1"              # l1, l2 or charbonnier
    level_weight: float = 1.0     # blind denoiser: weight of its noise-level estimate's L1 loss
    ema: float = 0.0              # EMA decay of the weights (0: off)
    seed: int = 0
    workers: int = 0
    device: str = "auto"
    threads: int = 0
    channels_last: bool = True
    compile: bool = False
    bf16: bool = False            # autocast on CUDA
    out: str = "runs/train"
    save_every: int = 250
    val_every: int = 250
    log_every: int = 25
    init: str | None = None
    # Seconds of training after which the run ends as if at its last step (validated, saved);
    # 0: none. For a fixed slot of a lent machine; one process only.
    time_limit: float = 0.0
    cache_dir: str | None = None  # decoded images as .npy, memory-mapped, for sets too large for RAM

    def __post_init__(self):
        if self.schedule not in ("cosine", "multistep"):
            raise SrnlError(f"must be cosine or multistep, got {self.schedule!r}",
                            option="schedule")
        if self.sampling not in ("image", "area"):
            raise SrnlError(f"must be image or area, got {self.sampling!r}", option="sampling")
        if self.loss not in ("l1", "l2", "charbonnier"):
            raise SrnlError(f"must be l1, l2 or charbonnier, got {self.loss!r}", option="loss")
        if self.steps < 1 or self.batch < 1 or self.patch < 8:
            raise SrnlError("steps and batch must be positive and patch at least 8")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise SrnlError(f"the learning rate must be a positive number, got {self.lr}",
                            option="lr")
        if self.schedule == "multistep" and any(not 0 < m < self.steps for m in self.milestones):
            raise SrnlError(f"milestones must fall inside the run's {self.steps} steps, got "
                            f"{list(self.milestones)}", option="milestones")
        if self.threads < 0:
            raise SrnlError(f"must be 1 or more (0: the default), got {self.threads}",
                            option="threads")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["degradation"] = self.degradation.to_dict()
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()
                if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls().updated(d)

    def updated(self, changes: dict) -> "TrainConfig":
        """A copy with `changes` applied; a nested "model" dict updates the model config."""
        unknown = unknown_fields(type(self), changes)
        if unknown:
            raise SrnlError(f"unknown training options: {', '.join(unknown)}")
        changes = dict(changes)
        if "model" in changes:
            try:
                model = ModelConfig.from_dict({**self.model.to_dict(), **changes["model"]})
            except (TypeError, ValueError) as e:
                raise SrnlError(f"bad model options: {e}") from None
            changes["model"] = model
        if "degradation" in changes:
            changes["degradation"] = Degradation.from_dict(changes["degradation"])
        for key in ("data", "milestones"):
            if key in changes:
                value = changes[key]
                changes[key] = tuple([value] if isinstance(value, str) else value)
        return replace(self, **changes)


def recipe_names() -> list[str]:
    # The degradation presets' file lives beside the recipes but is not one.
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml") if p.name != PRESETS_FILE.name)


def load_toml(path_or_recipe: str, _seen: frozenset = frozenset()) -> dict:
    """A config file's or a shipped recipe's options; `base = "RECIPE"` starts from that recipe's
    options and overrides them key by key (tables such as [degradation] merge field by field)."""
    path = Path(path_or_recipe)
    if not path.is_file():
        path = RECIPES_DIR / f"{path_or_recipe}.toml"
        if not path.is_file():
            raise SrnlError(f"no config file or recipe {path_or_recipe!r} "
                            f"(recipes: {', '.join(recipe_names())})")
    try:
        options = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SrnlError(f"{path}: invalid TOML ({e})") from None
    if "base" not in options:
        return options
    # A later phase of a recipe names the phase it continues and lists only what changes.
    base = options.pop("base")
    if base in _seen:
        raise SrnlError(f"{path}: recipes form a cycle through base {base!r}")
    merged = load_toml(base, _seen | {base})
    for key, value in options.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return merged


def to_toml(d: dict) -> str:
    """Flat TOML writer for this config (scalars, lists, one [model] table)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def load_recipe(path_or_recipe: str) -> TrainConfig:
    """A shipped recipe (x2, photo-x2...) or a TOML file, over the trainer's defaults."""
    return TrainConfig().updated(load_toml(path_or_recipe))


def options_to_changes(options: dict) -> dict:
    """Flat command-line options (None: not given) -> changes for `TrainConfig.updated`: the
    fields of ModelConfig go to the nested model table; non-local position -1 means none."""
    model_fields = {f.name for f in fields(ModelConfig)}
    given = {k: v for k, v in options.items() if v is not None}
    model = {k: given.pop(k) for k in list(given) if k in model_fields}
    if model.get("nonlocal_after") == [-1]:
        model["nonlocal_after"] = []
    if model.get("task") == "denoise" and "scale" not in model:
        model["scale"] = 1
    return {**given, "model": model}


def build_config(options: dict, recipe: str | None = None, config: str | None = None,
                 resume: str | None = None) -> TrainConfig:
    """The run's configuration: the trainer's defaults, under a resumed run's config.toml or a
    recipe or TOML file, under the options given (None: not given)."""
    cfg = TrainConfig()
    if resume:
        cfg = cfg.updated(load_toml(str(Path(resume) / "config.toml")))
        options = {**options, "out": str(resume)}
    elif recipe or config:
        cfg = cfg.updated(load_toml(str(config or recipe)))
    cfg = cfg.updated(options_to_changes(options))
    if not cfg.data:
        raise SrnlError("no training data: name a data folder, a recipe or a config file",
                        option="data")
    return cfg
