"""`srnl train`: the training loop, with exact resume and DistributedDataParallel under torchrun."""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from ..distributed import Dist, process_group
from ..atomic import write_text
from ..models.checkpoint import (inference_weights, load_checkpoint, model_payload,
                                 save_checkpoint)
from ..errors import SrnlError
from ..runtime import resolve_device, use_threads
from ..eval.restorers import run_network, score_denoise, score_sr
from ..metrics import rgb_scores
from ..models.config import ModelConfig
from ..models.layers import zero_weight_norm
from ..models.network import RestorationNet, body_layout, build_model
from ..degrade import Degradation
from .config import TrainConfig, to_toml
from .data import ImageSet, PatchBatches, gather_pairs, load_images, split_holdout
from .plot import plot_curves


def lr_factor(cfg: TrainConfig, step: int, time_used: float = 0.0) -> float:
    """Multiplier of the base learning rate at `step` (0-based). `time_used` is the share of a
    time limit already spent: the cosine follows whichever of steps and time is further along,
    so that a run cut by its time limit still ends decayed."""
    if cfg.schedule == "multistep":
        return cfg.gamma ** sum(step >= m for m in cfg.milestones)
    # The warm-up takes at most a tenth of the run, so that a short run still decays.
    warmup = min(cfg.warmup, cfg.steps // 10)
    if step < warmup:
        return (step + 1) / warmup
    progress = max((step - warmup) / max(1, cfg.steps - warmup), time_used)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _loss(cfg: TrainConfig, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if cfg.loss == "charbonnier":
        return torch.sqrt((out - target) ** 2 + 1e-6).mean()
    if cfg.loss == "l2":
        # PSNR is a function of the mean squared error: a short L2 phase after L1 aims at it directly.
        return F.mse_loss(out, target)
    return F.l1_loss(out, target)


def _level_loss(level: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """L1 between the estimated map's mean and the true level, where the input has one (NaN: none,
    the estimator learns those through the image loss alone)."""
    known = ~torch.isnan(sigma)
    if not known.any():
        return level.sum() * 0  # keeps the estimator in the graph for DistributedDataParallel
    return (level.mean((1, 2, 3))[known] - sigma[known]).abs().mean()


def _grown_names(theirs: dict, source: ModelConfig, target: ModelConfig) -> dict:
    """`theirs` renamed to the body layout of `target`: a deeper network keeps the source's
    blocks, non-local modules and closing conv in place, with new blocks before the conv."""
    ours = {part: str(i) for i, part in enumerate(body_layout(target))}
    index = {str(i): ours.get(part) for i, part in enumerate(body_layout(source))}
    renamed = {}
    for key, value in theirs.items():
        parts = key.split(".")
        if parts[0] == "body":
            if index[parts[1]] is None:
                continue
            parts[1] = index[parts[1]]
        renamed[".".join(parts)] = value
    return renamed


def _init_weights(model: RestorationNet, source: str) -> int:
    """Copy every tensor whose name and shape match (x3/x4 from x2: the upsampler differs). Blocks
    the source lacks start as the identity (last conv zero), so a deeper network begins with the
    source's outputs and the extra blocks only add what they learn."""
    from ..models.registry import resolve_model_path

    ckpt = load_checkpoint(resolve_model_path(source))
    theirs_config = ModelConfig.from_dict(ckpt["config"])
    theirs = _grown_names(ckpt[inference_weights(ckpt)], theirs_config, model.config)
    ours = model.state_dict()
    matched = {k: v for k, v in theirs.items() if k in ours and ours[k].shape == v.shape}
    model.load_state_dict(matched, strict=False)
    have = set(body_layout(theirs_config))
    for part, module in zip(body_layout(model.config), model.body):
        if part.startswith("block") and part not in have:
            zero_weight_norm(module.body[-1])
    return len(matched)


def validate(model: RestorationNet, cfg: TrainConfig, val: ImageSet) -> float:
    """Mean PSNR on the validation set: Y with shave = scale for SR; RGB for denoising, at val_sigma
    or, for inputs made by a degradation chain, blind."""
    was_training = model.training
    model.eval()
    scores = []
    for i, hr in enumerate(val.hr):
        if cfg.model.task == "sr":
            scores.append(score_sr(model, hr, val.lr[i])[0])
        elif val.lr:  # degraded by the chain: the blind mode, no level given
            scores.append(rgb_scores(run_network(model, val.lr[i]), hr)[0])
        else:
            scores.append(score_denoise(model, hr, cfg.val_sigma, i)[0])
    model.train(was_training)
    return sum(scores) / len(scores)


def ema_with_warmup(decay: float):
    """EMA whose decay ramps up as (1 + n) / (10 + n) towards `decay` (as timm and BasicSR do):
    with a fixed 0.999 a 1,500-step run would still carry 22% of its random initialisation."""

    @torch.no_grad()
    def update(ema_params, params, num_averaged):
        n = float(num_averaged)
        torch._foreach_lerp_(ema_params, params, 1 - min(decay, (1 + n) / (10 + n)))

    return update


class Run:
    """Everything a checkpoint must hold to continue exactly where it stopped."""

    def __init__(self, cfg: TrainConfig, device: str, d: Dist):
        self.cfg, self.device, self.d = cfg, device, d
        self.model = build_model(cfg.model).to(device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.started = time.perf_counter()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(cfg, s, self.time_used()))
        self.ema = (AveragedModel(self.model, multi_avg_fn=ema_with_warmup(cfg.ema),
                                  use_buffers=True) if cfg.ema > 0 else None)
        self.step = 0
        self.best = -math.inf
        self.history: list[dict] = []

    def time_used(self) -> float:
        """The share of the time limit spent (0 without one)."""
        if not self.cfg.time_limit:
            return 0.0
        return (time.perf_counter() - self.started) / self.cfg.time_limit

    @property
    def eval_model(self) -> RestorationNet:
        return self.ema.module if self.ema is not None else self.model

    def state(self, meta: dict) -> dict:
        payload = model_payload(self.model, meta)
        payload.update(
            train_config=self.cfg.to_dict(), step=self.step, best=self.best,
            optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
            rng={"torch": torch.get_rng_state(), "python": list(random.getstate()[1])},
            history=json.dumps(self.history))
        if self.ema is not None:
            payload.update(ema=self.ema.module.state_dict(), ema_updates=int(self.ema.n_averaged))
        return payload

    def load(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.ema is not None:
            self.ema.module.load_state_dict(ckpt["ema"])
            self.ema.n_averaged.fill_(ckpt["ema_updates"])
        self.step, self.best = ckpt["step"], ckpt["best"]
        self.history = json.loads(ckpt["history"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        state = random.getstate()
        random.setstate((state[0], tuple(ckpt["rng"]["python"]), state[2]))


def _meta(cfg: TrainConfig, run: Run, images: ImageSet, seconds: float, d: Dist) -> dict:
    return {"data": ", ".join(cfg.data), "images": len(images.hr), "steps": run.step,
            "val_psnr": run.best if run.best > -math.inf else None,
            "train_seconds": round(seconds, 1), "processes": d.world,
            "global_batch": cfg.batch * d.world, "degradation": cfg.degradation.name}


def prepare_run_dir(cfg: TrainConfig, resume: bool) -> Path:
    out = Path(cfg.out)
    if not resume and (out / "last.pt").exists():
        raise SrnlError(f"{out} already holds a run: resume it, or choose another run "
                        "directory", option="resume")
    out.mkdir(parents=True, exist_ok=True)
    return out


@dataclass
class Progress:
    """What the progress callback sees after each step (rank 0)."""
    step: int
    steps: int
    loss: float
    lr: float
    val_psnr: float | None


def train(cfg: TrainConfig, resume: bool = False, progress=None, echo=print) -> Path:
    """Train as `cfg` says; with `resume`, continue `cfg.out/last.pt` exactly. Returns the run dir.
    `progress(Progress)` is called after each step on rank 0."""
    use_threads(cfg.threads or None)
    device = resolve_device(cfg.device)
    with process_group("nccl" if device.startswith("cuda") else "gloo") as d:
        return _train(cfg, d, device, resume, progress, echo)


@dataclass
class Data:
    images: ImageSet
    val: ImageSet | None
    per_patch: Degradation | None  # the chain that makes each training input, if not bicubic


def load_data(cfg: TrainConfig) -> Data:
    task, scale = cfg.model.task, cfg.model.scale
    split_scale = scale if task == "sr" else None
    pairs, held = split_holdout(gather_pairs(cfg.data, split_scale), cfg.val_holdout)
    # The protocol's bicubic LR is made once per image; any other degradation per patch and step.
    per_patch = None if cfg.degradation.is_bicubic else cfg.degradation
    images = load_images(pairs, task, scale, cfg.patch * scale, cfg.cache_dir,
                         hr_only=per_patch is not None)
    val_pairs = gather_pairs([cfg.val], split_scale, "valid") if cfg.val else held
    if cfg.val_limit:
        val_pairs = val_pairs[: cfg.val_limit]
    val = load_images(val_pairs, task, scale, 1, fixed=per_patch) if val_pairs else None
    return Data(images, val, per_patch)


def start_run(cfg: TrainConfig, device: str, d: Dist, out: Path, resume: bool, echo) -> Run:
    """A fresh, initialised or resumed run; the seeds come first so both start identically."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    run = Run(cfg, device, d)
    if resume:
        run.load(load_checkpoint(out / "last.pt"))
    elif cfg.init:
        matched = _init_weights(run.model, cfg.init)
        if run.ema is not None:
            run.ema.module.load_state_dict(run.model.state_dict())
        echo(f"initialised {matched} tensors from {cfg.init}")
    return run


def batches(cfg: TrainConfig, data: Data, d: Dist, first_step: int, device: str = "cpu"):
    """The batches of steps first_step.. cfg.steps - 1 of this rank."""
    dataset = PatchBatches(data.images, cfg.model.task, cfg.model.scale, cfg.patch, cfg.batch,
                           cfg.seed, d.rank, (cfg.sigma_min, cfg.sigma_max), cfg.steps,
                           data.per_patch, by_area=cfg.sampling == "area")
    return torch.utils.data.DataLoader(dataset, batch_size=None,
                                       sampler=range(first_step, cfg.steps),
                                       num_workers=cfg.workers,
                                       prefetch_factor=4 if cfg.workers else None,
                                       pin_memory=device.startswith("cuda"))


def train_step(cfg: TrainConfig, run: Run, net: torch.nn.Module, batch,
               device: str) -> torch.Tensor:
    """One optimisation step; returns the loss as a tensor on the device: reading it (a GPU
    sync) is left to the log, every `log_every` steps."""
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    inputs, target, sigma = batch
    inputs = inputs.to(device, memory_format=memory_format, non_blocking=True)
    target = target.to(device, memory_format=memory_format, non_blocking=True)
    sigma = sigma.to(device)
    # bf16 autocast on whichever device runs, so that the CPU runs (and tests) the CUDA path.
    with torch.autocast(device.split(":")[0], torch.bfloat16, enabled=cfg.bf16):
        if cfg.model.blind:
            output, level = net(inputs, sigma, return_level=True)
            loss = _loss(cfg, output.float(), target) + cfg.level_weight * _level_loss(
                level.float(), sigma)
        else:
            output = net(inputs, sigma) if cfg.model.task == "denoise" else net(inputs)
            loss = _loss(cfg, output.float(), target)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    run.scheduler.step()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    run.step += 1
    return loss.detach()


class Bookkeeper:
    """Rank 0's side of a run: validation, the log, the best and last checkpoints, the curve."""

    def __init__(self, cfg: TrainConfig, run: Run, data: Data, out: Path, d: Dist):
        self.cfg, self.run, self.data, self.out, self.d = cfg, run, data, out, d
        self.log_file = out / "log.jsonl"
        # A killed run may have logged past its last checkpoint: keep the log consistent with it.
        lines = self.log_file.read_text().splitlines() if self.log_file.exists() else []
        self.log_file.write_text("".join(l + "\n" for l in lines
                                         if json.loads(l)["step"] <= run.step))
        self.start = self.tic = time.perf_counter()
        self.elapsed_before = run.history[-1].get("seconds", 0.0) if run.history else 0.0
        # The budget that matters on a CPU machine: cores held (threads x processes) x wall time.
        self.cores = torch.get_num_threads() * d.world
        self.cpu_hours_before = (run.history[-1].get("cpu_hours", self.elapsed_before * self.cores
                                                     / 3600) if run.history else 0.0)
        self.val_psnr = run.history[-1].get("val_psnr") if run.history else None
        self.window_loss, self.window_steps = 0.0, 0
        self.last_loss = math.nan
        self.stopped = False  # the time limit ended the run

    def seconds(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.start

    def cpu_hours(self) -> float:
        return self.cpu_hours_before + (time.perf_counter() - self.start) * self.cores / 3600

    def save(self, name: str) -> None:
        save_checkpoint(self.out / name, self.run.state(
            _meta(self.cfg, self.run, self.data.images, self.seconds(), self.d)))

    def after_step(self, loss: torch.Tensor) -> None:
        cfg, run = self.cfg, self.run
        self.window_loss += loss
        self.window_steps += 1
        self.stopped = run.time_used() >= 1
        last = run.step == cfg.steps or self.stopped
        validated = False
        if self.data.val is not None and (run.step % cfg.val_every == 0 or last):
            self.val_psnr = validate(run.eval_model, cfg, self.data.val)
            validated = True
            if self.val_psnr > run.best:
                run.best = self.val_psnr
                self.save("best.pt")
        if run.step % cfg.log_every == 0 or validated or last:
            self.log(validated)
        if run.step % cfg.save_every == 0 or last:
            self.save("last.pt")
            plot_curves(run.history, self.out / "curve.png")

    def log(self, validated: bool) -> None:
        run = self.run
        self.last_loss = float(self.window_loss) / self.window_steps
        record = {"step": run.step, "loss": self.last_loss,
                  "lr": run.scheduler.get_last_lr()[0],
                  "steps_per_s": self.window_steps / max(1e-9, time.perf_counter() - self.tic),
                  "seconds": round(self.seconds(), 2), "cpu_hours": round(self.cpu_hours(), 6)}
        if validated:
            record["val_psnr"] = self.val_psnr
        run.history.append(record)
        with open(self.log_file, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.window_loss, self.window_steps, self.tic = 0.0, 0, time.perf_counter()


def _train(cfg: TrainConfig, d: Dist, device: str, resume: bool, progress, echo) -> Path:
    if cfg.time_limit and d.world > 1:
        raise SrnlError("a time limit ends a single-process run only", option="time_limit")
    out = prepare_run_dir(cfg, resume) if d.main else Path(cfg.out)
    data = load_data(cfg)
    run = start_run(cfg, device, d, out, resume, echo)
    if d.main:
        write_text(out / "config.toml", to_toml(cfg.to_dict()))
        if data.images.skipped:
            echo(f"skipped {len(data.images.skipped)} unreadable images: "
                 f"{', '.join(data.images.skipped)}")
    net = run.model
    if d.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(run.model)
    if cfg.compile:
        net = torch.compile(net)
    book = Bookkeeper(cfg, run, data, out, d) if d.main else None
    run.started = time.perf_counter()  # the time limit counts training, not data loading
    net.train()
    for batch in batches(cfg, data, d, run.step, device):
        loss = train_step(cfg, run, net, batch, device)
        if book is None:
            continue
        book.after_step(loss)
        if progress:
            progress(Progress(run.step, cfg.steps, book.last_loss, run.scheduler.get_last_lr()[0],
                              book.val_psnr))
        if book.stopped:
            echo(f"time limit: stopped at step {run.step} of {cfg.steps}")
            break
    if d.world > 1:
        dist.barrier()
    return out
