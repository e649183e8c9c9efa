"""A shipped model's whole recipe: its phases (srnl/recipes/*.toml, listed in the model registry)
run in order in one run directory, each starting from the weights the one before ended with, so
that `srnl train --recipe photo-x2 --data mine/` trains the network srnl ships on the user's own
images. A stopped pipeline resumes where it stopped: finished phases are kept, the phase under way
continues from its last checkpoint."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text
from ..errors import SrnlError
from ..models.checkpoint import load_checkpoint
from ..models.registry import PRETRAINED
from .config import TrainConfig, load_toml, options_to_changes, to_toml

PIPELINE_FILE = "pipeline.toml"
# Validation when the user's own data replaces a recipe's and names no validation set.
DEFAULT_HOLDOUT = 10


@dataclass(frozen=True)
class Phase:
    name: str
    config: TrainConfig


def pipeline_names() -> list[str]:
    return [name for name, spec in PRETRAINED.items() if spec.phases]


def is_pipeline(recipe: str | None) -> bool:
    return recipe in pipeline_names()


def plan_pipeline(name: str, options: dict, out: str | Path) -> list[Phase]:
    """The phases of shipped model `name` with the options given (None: not given) applied to
    every phase, each in its own folder under `out`. A phase's `init` is left to `run_pipeline`
    from the second on. With `data` given, the recipe's development data and validation set are
    dropped: validation is `val`, `val_holdout` or DEFAULT_HOLDOUT training images."""
    if name not in pipeline_names():
        raise SrnlError(f"no shipped model {name!r} (models: {', '.join(pipeline_names())})")
    phases = []
    for phase in PRETRAINED[name].phases:
        recipe, given = with_own_data(load_toml(phase), options)
        cfg = TrainConfig().updated(recipe).updated(options_to_changes(given))
        phases.append(Phase(phase, cfg.updated({"out": str(Path(out) / phase)})))
    return phases


def with_own_data(recipe: dict, options: dict) -> tuple[dict, dict]:
    """(recipe, options given) for a run on the user's own data: where `options` name `data`,
    the recipe's development data and validation set give way, and validation is `val`,
    `val_holdout` or DEFAULT_HOLDOUT training images. Options not given are None."""
    options = {k: v for k, v in options.items() if v is not None}
    if "data" not in options:
        return recipe, options
    recipe = {k: v for k, v in recipe.items() if k not in ("data", "val", "val_holdout")}
    if "val" not in options and "val_holdout" not in options:
        options["val_holdout"] = DEFAULT_HOLDOUT
    return recipe, options


def phase_weights(run_dir: Path) -> Path:
    """What a finished phase hands on: its best validated weights, else its last."""
    best = run_dir / "best.pt"
    return best if best.exists() else run_dir / "last.pt"


def finished(phase: Phase) -> bool:
    last = Path(phase.config.out) / "last.pt"
    return last.exists() and load_checkpoint(last).get("step") == phase.config.steps


def run_pipeline(name: str, options: dict, out: str | Path, resume: bool, train, echo) -> Path:
    """Train every phase of `name` in order under `out` with `train(cfg, resume=...)`; returns the
    last phase's folder. `options` and the model name are written to `out/pipeline.toml`, so
    `resume_pipeline(out)` continues it."""
    out = Path(out)
    if not resume and (out / PIPELINE_FILE).exists():
        raise SrnlError(f"{out} already holds a run: resume it, or choose another run directory",
                        option="resume")
    phases = plan_pipeline(name, options, out)
    write_text(out / PIPELINE_FILE, to_toml({"model": name, "options": {
        k: v for k, v in options.items() if v is not None}}))
    previous = None
    for k, phase in enumerate(phases, 1):
        cfg = phase.config
        if previous is not None:
            cfg = cfg.updated({"init": str(phase_weights(previous))})
        run_dir = Path(cfg.out)
        if finished(phase):
            echo(f"phase {k}/{len(phases)} {phase.name}: finished earlier")
        else:
            echo(f"phase {k}/{len(phases)} {phase.name}: {cfg.steps} steps")
            train(cfg, resume=(run_dir / "last.pt").exists())
        previous = run_dir
    return previous


def resume_pipeline(out: str | Path, train, echo) -> Path:
    out = Path(out)
    saved = tomllib.loads((out / PIPELINE_FILE).read_text())
    return run_pipeline(saved["model"], saved.get("options", {}), out, True, train, echo)
