"""One prepared command for a lent GPU machine: retrain every shipped model in a fixed slot and
bring back what fits a small transfer (each model's weights, one log, in one folder).

Every model continues from its shipped weights on the mix of its last phase, with the batches a
GPU affords, all models at once (each its own process, its share of the CPU cores decoding and
degrading patches). Each run's cosine schedule follows its time limit, so it ends decayed however
many steps the machine managed; validation keeps the best weights as always."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text
from ..errors import SrnlError
from ..models.checkpoint import export_model
from ..models.registry import PRETRAINED
from .config import TrainConfig, load_toml, options_to_changes, to_toml
from .pipeline import with_own_data

# The shipped models a retrain covers; denoise-gaussian is the benchmark protocol's own model,
# kept as published.
MODELS = ("x2", "x3", "x4", "photo-x2", "photo-x3", "photo-x4", "denoise")
# Batches sized for a GPU; the shipped models were trained on 16 patches of 48 (SR) or 96
# (denoising) pixels a step on a CPU.
GPU_BATCH = {"sr": dict(batch=64, patch=64), "denoise": dict(batch=64, patch=128)}
# Set-up before the time limit starts counting (importing torch, decoding the images) and the
# export afterwards, within the slot.
OVERHEAD_S = 120
LOG = "retrain.jsonl"


@dataclass(frozen=True)
class Job:
    name: str
    config: TrainConfig


def plan_retrain(work: str | Path, minutes: float, device: str = "cuda",
                 models: tuple[str, ...] = MODELS, options: dict | None = None,
                 cores: int | None = None) -> list[Job]:
    """Each model's training configuration, in folders under `work`; `options` (training
    options, None: not given) override every model's, as on the command line."""
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise SrnlError(f"no retrain for {', '.join(unknown)} (models: {', '.join(MODELS)})")
    limit = minutes * 60 - OVERHEAD_S
    if limit <= 0:
        raise SrnlError(f"{minutes:g} minutes leave no time to train after {OVERHEAD_S} s of "
                        "set-up", option="minutes")
    cores = cores or os.cpu_count() or 1
    workers = max(0, cores // len(models) - 1)  # and one core for each model's main process
    jobs = []
    for name in models:
        recipe, given = with_own_data(load_toml(PRETRAINED[name].phases[-1]), options or {})
        task = recipe.get("model", {}).get("task", "sr")
        changes = {**recipe, **GPU_BATCH[task], "init": name, "steps": 10**6,
                   "time_limit": limit, "warmup": 500, "val_every": 1000, "save_every": 1000,
                   "device": device, "bf16": device.startswith("cuda"), "workers": workers,
                   "threads": 1, "out": str(Path(work) / name)}
        cfg = TrainConfig().updated(changes).updated(options_to_changes(given))
        jobs.append(Job(name, cfg))
    return jobs


def run_retrain(dest: str | Path, jobs: list[Job], echo=print) -> list[dict]:
    """Train every job at once, each in its own `srnl train` process; then write each model's
    best weights as `dest/NAME.pt` and every run's log, tagged by model, as `dest/retrain.jsonl`.
    Returns one summary per model (steps, seconds, best validation PSNR, file)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    procs = []
    for job in jobs:
        run_dir = Path(job.config.out)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(to_toml(job.config.to_dict()))
        log = open(run_dir / "stderr.txt", "w")
        procs.append((job, log, subprocess.Popen(
            [sys.executable, "-c", "from srnl.cli import main; main()", "train", "--config",
             str(run_dir / "config.toml")], stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "OMP_NUM_THREADS": "1"})))
        echo(f"{job.name}: started ({job.config.time_limit:.0f} s of training)")
    summaries, lines = [], []
    for job, log, proc in procs:
        code = proc.wait()
        log.close()
        run_dir = Path(job.config.out)
        if code != 0:
            tail = (run_dir / "stderr.txt").read_text().strip().splitlines()[-1:]
            raise SrnlError(f"retraining {job.name} failed: {' '.join(tail)}")
        best = run_dir / "best.pt"
        weights = best if best.exists() else run_dir / "last.pt"
        export_model(weights, dest / f"{job.name}.pt")
        history = [json.loads(l) for l in (run_dir / "log.jsonl").read_text().splitlines()]
        lines += [json.dumps({"model": job.name, **h}) for h in history]
        scores = [h["val_psnr"] for h in history if "val_psnr" in h]
        summaries.append({"model": job.name, "steps": history[-1]["step"],
                          "seconds": history[-1]["seconds"],
                          "best_val_psnr": max(scores) if scores else None,
                          "file": str(dest / f"{job.name}.pt")})
        echo(f"{job.name}: {history[-1]['step']} steps, best validation "
             f"{max(scores) if scores else float('nan'):.3f} dB")
    write_text(dest / LOG, "\n".join(lines) + "\n")
    return summaries


def retrain(dest: str | Path, work: str | Path, minutes: float, device: str = "cuda",
            models: tuple[str, ...] = MODELS, options: dict | None = None, echo=print) -> list[dict]:
    start = time.perf_counter()
    summaries = run_retrain(dest, plan_retrain(work, minutes, device, models, options), echo)
    echo(f"retrain: {time.perf_counter() - start:.0f} s in all")
    return summaries
