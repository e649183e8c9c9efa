import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import smooth_image
from srnl.models.checkpoint import load_checkpoint, model_from_checkpoint
from srnl.datasets import discover, load_sr_pair
from srnl.errors import SrnlError
from srnl.train.config import TrainConfig, load_toml, to_toml
from srnl.train.data import PatchBatches, gather_pairs, load_images, split_holdout
from srnl.models.network import build_model
from srnl.train.loop import lr_factor, train

TINY = {"features": 8, "blocks": 2, "nonlocal_after": [1], "nonlocal_down": 2, "nonlocal_pool": 2,
        "nonlocal_dim": 4}


def make_folder(root: Path, n=6, size=(40, 48), ext="png", nested=False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        folder = root / f"part{i % 2}" if nested else root
        folder.mkdir(exist_ok=True)
        Image.fromarray(smooth_image(*size, seed=i)).save(folder / f"img{i}.{ext}")
    return root


def tiny_cfg(tmp_path: Path, **kw) -> TrainConfig:
    base = dict(data=(str(make_folder(tmp_path / "data")),), steps=12, batch=2, patch=8,
                warmup=2, save_every=4, val_every=6, log_every=2, threads=1, device="cpu",
                out=str(tmp_path / "run"), val_holdout=1, model=TINY)
    return TrainConfig().updated({**base, **kw})


def test_div2k_layout_uses_provided_lr_and_edsr_layout(tmp_path):
    root = tmp_path / "DIV2K"
    make_folder(root / "DIV2K_train_HR", n=2, size=(32, 36))
    lr_dir = root / "DIV2K_train_LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    marker = np.full((16, 18, 3), 7, np.uint8)
    Image.fromarray(marker).save(lr_dir / "img0x2.png")
    make_folder(root / "DIV2K_valid_HR", n=1, size=(32, 36))
    pairs = discover(root, 2)
    assert [p.hr.name for p in pairs] == ["img0.png", "img1.png"]
    assert pairs[0].lr == lr_dir / "img0x2.png" and pairs[1].lr is None
    hr, lr = load_sr_pair(pairs[0], 2)
    assert np.array_equal(lr, marker)
    assert [p.hr.name for p in discover(root, 2, split="valid")] == ["img0.png"]
    assert len(discover(root / "DIV2K_train_HR", 2)) == 2  # the HR folder itself works too
    edsr = tmp_path / "Set"
    make_folder(edsr / "HR", n=1, size=(32, 36))
    (edsr / "LR_bicubic" / "X2").mkdir(parents=True)
    Image.fromarray(marker).save(edsr / "LR_bicubic" / "X2" / "img0x2.png")
    assert discover(edsr, 2)[0].lr is not None


def test_plain_nested_folders_and_greyscale_become_rgb(tmp_path):
    root = make_folder(tmp_path / "plain", n=4, nested=True, ext="jpg")
    Image.fromarray(smooth_image(40, 48, channels=1)).save(root / "grey.png")
    pairs = gather_pairs([root], 2)
    assert len(pairs) == 5
    images = load_images(pairs, "sr", 2, 16)
    assert all(im.shape[2] == 3 for im in images.hr)


def test_crops_are_aligned_and_lr_is_the_bicubic_of_the_hr_crop(tmp_path):
    root = make_folder(tmp_path / "d", n=2, size=(64, 80))
    images = load_images(gather_pairs([root], 2), "sr", 2, 32)
    batches = PatchBatches(images, "sr", 2, patch=12, batch=8, seed=3)
    lr, hr, _ = batches[5]
    assert lr.shape == (8, 3, 12, 12) and hr.shape == (8, 3, 24, 24)
    # Each LR patch is the matching crop of the downscaled image, so downscaling the HR patch
    # must land close to it (only the filter's border support differs).
    down = torch.nn.functional.avg_pool2d(hr, 2)
    assert (down - lr)[..., 2:-2, 2:-2].abs().mean() < 0.02
    other = torch.nn.functional.avg_pool2d(batches[6][1], 2)
    assert (other - lr)[..., 2:-2, 2:-2].abs().mean() > 0.02


def test_batches_depend_only_on_seed_rank_and_step(tmp_path):
    images = load_images(gather_pairs([make_folder(tmp_path / "d")], 2), "sr", 2, 16)
    a = PatchBatches(images, "sr", 2, 8, 4, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a[7], a[7]))
    assert not torch.equal(a[7][0], a[8][0])
    assert not torch.equal(a[7][0], PatchBatches(images, "sr", 2, 8, 4, seed=1, rank=1)[7][0])


def test_denoising_degradation_noise_matches_sigma(tmp_path):
    images = load_images(gather_pairs([make_folder(tmp_path / "d", size=(64, 64))], None),
                         "denoise", 1, 32)
    batches = PatchBatches(images, "denoise", 1, 32, 64, seed=0, sigma_range=(0, 55))
    noisy, clean, sigma = batches[0]
    assert noisy.shape == clean.shape == (64, 3, 32, 32) and sigma.shape == (64,)
    assert 0 <= sigma.min() and sigma.max() <= 55 / 255
    measured = (noisy - clean).flatten(1).std(1)
    assert torch.allclose(measured, sigma, atol=0.01)
    assert noisy.min() < 0 or noisy.max() > 1  # unclipped, like the evaluation protocol


def test_holdout_is_deterministic_and_disjoint(tmp_path):
    pairs = gather_pairs([make_folder(tmp_path / "d", n=20)], 2)
    train_pairs, held = split_holdout(pairs, 4)
    assert len(held) == 4 and len(train_pairs) == 16
    assert not {p.hr for p in held} & {p.hr for p in train_pairs}
    assert held == split_holdout(list(reversed(pairs)), 4)[1]


def test_bad_data_is_reported_or_refused(tmp_path):
    root = make_folder(tmp_path / "d", n=3)
    (root / "broken.png").write_bytes(b"not a png")
    images = load_images(gather_pairs([root], 2), "sr", 2, 16)
    assert len(images.hr) == 3 and images.skipped == [str(root / "broken.png")]
    with pytest.raises(SrnlError, match="no usable training image"):
        load_images(gather_pairs([root], 2), "sr", 2, 200)
    with pytest.raises(SrnlError, match="no such folder"):
        gather_pairs([tmp_path / "missing"], 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SrnlError, match="no images"):
        gather_pairs([tmp_path / "empty"], 2)


def test_cosine_schedule_warms_up_then_decays_and_multistep_steps():
    cfg = TrainConfig(steps=100, warmup=10, lr=1.0, min_lr_ratio=0.0)
    values = [lr_factor(cfg, s) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[9:], values[10:])) and values[-1] < 0.01
    multi = TrainConfig(schedule="multistep", milestones=(5, 8), gamma=0.5)
    assert [lr_factor(multi, s) for s in (0, 5, 8)] == [1.0, 0.5, 0.25]


def test_a_short_run_with_the_default_warmup_still_decays():
    cfg = TrainConfig(steps=100)  # the default warm-up is 100 steps
    values = [lr_factor(cfg, s) for s in range(100)]
    assert max(values) == pytest.approx(1.0) and values[-1] < 0.02
    with pytest.raises(SrnlError, match="milestones"):
        TrainConfig(steps=100, schedule="multistep", milestones=(50, 100))


def test_config_file_round_trip_and_bad_options(tmp_path):
    cfg = tiny_cfg(tmp_path, milestones=(3, 5))
    (tmp_path / "c.toml").write_text(to_toml(cfg.to_dict()))
    assert TrainConfig.from_dict(load_toml(str(tmp_path / "c.toml"))) == cfg
    with pytest.raises(SrnlError, match="unknown training options"):
        cfg.updated({"stepz": 3})
    with pytest.raises(SrnlError, match="recipe"):
        load_toml("no-such-recipe")


def test_training_writes_the_run_directory_and_beats_its_start(tmp_path):
    cfg = tiny_cfg(tmp_path, steps=30, ema=0.9)
    out = train(cfg, echo=lambda *a: None)
    assert {p.name for p in out.iterdir()} >= {"config.toml", "last.pt", "best.pt", "log.jsonl",
                                               "curve.png"}
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 30 and "val_psnr" in log[-1]
    assert log[-1]["loss"] < log[0]["loss"]
    # CPU-hours: one process on cfg.threads threads, so threads x its wall time.
    hours = [r["cpu_hours"] for r in log]
    assert hours == sorted(hours) and hours[-1] > 0
    assert hours[-1] == pytest.approx(log[-1]["seconds"] * cfg.threads / 3600, rel=0.05)
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["step"] == 30 and ckpt["ema"] is not None and ckpt["meta"]["steps"] == 30
    with pytest.raises(SrnlError, match="already holds a run"):
        train(cfg, echo=lambda *a: None)


def test_ema_follows_training_not_the_initialisation(tmp_path):
    """With decay 0.999 and 30 steps, a plain EMA would still be ~97% the random init."""
    out = train(tiny_cfg(tmp_path, steps=30, ema=0.999), echo=lambda *a: None)
    ckpt = load_checkpoint(out / "last.pt")
    torch.manual_seed(0)
    init = build_model(TrainConfig().updated({"model": TINY}).model).state_dict()
    key = "head.parametrizations.weight.original1"
    to_model = (ckpt["ema"][key] - ckpt["model"][key]).norm()
    to_init = (ckpt["ema"][key] - init[key]).norm()
    assert to_model < to_init


def test_fine_tune_from_x2_copies_the_matching_tensors(tmp_path):
    from srnl.train.loop import _init_weights

    x2 = train(tiny_cfg(tmp_path, steps=2, out=str(tmp_path / "x2")), echo=lambda *a: None)
    source = load_checkpoint(x2 / "last.pt")["model"]  # no EMA in this run: the trained weights
    torch.manual_seed(1)
    x4 = build_model(tiny_cfg(tmp_path, model={**TINY, "scale": 4}).model)
    fresh = {k: v.clone() for k, v in x4.state_dict().items()}
    assert _init_weights(x4, str(x2 / "last.pt")) == len(source)
    target = x4.state_dict()
    # Everything x2 has (head, body, the first x2 upsampling stage) is copied; x4's second stage
    # and output conv keep their fresh initialisation.
    copied = [k for k in source if k in target and source[k].shape == target[k].shape]
    assert copied and all(torch.equal(target[k], source[k]) for k in copied)
    new = [k for k in target if k not in copied]
    assert any(k.startswith("tail.0.2") for k in new)
    assert all(torch.equal(target[k], fresh[k]) for k in new)


def test_a_deeper_network_grown_from_a_trained_one_starts_with_its_outputs_and_learns(tmp_path):
    from srnl.train.loop import _init_weights

    small = train(tiny_cfg(tmp_path, steps=4, out=str(tmp_path / "small")), echo=lambda *a: None)
    source = model_from_checkpoint(load_checkpoint(small / "last.pt"))
    deep = build_model(tiny_cfg(tmp_path, model={**TINY, "blocks": 4}).model)
    assert _init_weights(deep, str(small / "last.pt")) == len(source.state_dict())
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(deep(x), source(x), atol=1e-6)
    # The new blocks (before the closing conv) start as the identity, yet receive a gradient.
    F.l1_loss(deep(x), torch.rand(2, 3, 32, 32)).backward()
    new_block = deep.body[-2]
    assert new_block.body[-1].parametrizations.weight.original0.grad.abs().sum() > 0


def _cli_train(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from srnl.cli import main; main()", "train",
                             *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_resume_after_kill_ends_with_the_uninterrupted_weights(tmp_path):
    base = tiny_cfg(tmp_path, steps=300, save_every=40, val_every=100, log_every=10)
    straight = train(base.updated({"out": str(tmp_path / "straight")}), echo=lambda *a: None)
    cfg_path = tmp_path / "killed.toml"
    cfg_path.write_text(to_toml(base.updated({"out": str(tmp_path / "killed")}).to_dict()))
    proc = _cli_train("--config", cfg_path)
    last = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = load_checkpoint(last)["step"]
    if stopped_at == 300:
        pytest.skip("the run finished before it could be killed")
    resumed = _cli_train("--resume", tmp_path / "killed")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(last)
    assert b["step"] == 300
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["scheduler"] == b["scheduler"]
    log = [json.loads(l)["step"] for l in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert log == sorted(set(log)) and log[-1] == 300


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_two_process_torchrun(tmp_path):
    cfg = tiny_cfg(tmp_path, steps=6, save_every=3, val_every=3)
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(to_toml(cfg.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node=2", shutil.which("srnl") or "srnl", "train",
                           "--config", str(cfg_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["step"] == 6 and ckpt["meta"]["processes"] == 2 and ckpt["meta"]["global_batch"] == 4


def test_a_list_file_names_a_split_of_a_folder(tmp_path):
    root = make_folder(tmp_path / "photos", n=4)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "val.txt").write_text("# held out\n../photos/img1.png\n\n../photos/img3.png  # b\n")
    assert [p.hr.name for p in discover(lists / "val.txt")] == ["img1.png", "img3.png"]
    assert [p.hr.name for p in discover(root / "img2.png")] == ["img2.png"]
    (lists / "bad.txt").write_text("../photos/img9.png\n")
    with pytest.raises(SrnlError, match="1 listed images missing"):
        discover(lists / "bad.txt")
    assert root.is_dir()


def test_every_listed_recipe_loads_as_a_training_configuration():
    from srnl.train.config import load_recipe, recipe_names

    names = recipe_names()
    assert "x2" in names and "degradations" not in names
    for name in names:
        assert load_recipe(name).steps > 0


def test_loss_options_are_their_definitions_and_others_are_refused():
    from srnl.train.loop import _loss
    out, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    diff = out - target
    expected = {"l1": diff.abs().mean(), "l2": (diff ** 2).mean(),
                "charbonnier": torch.sqrt(diff ** 2 + 1e-6).mean()}
    for name, value in expected.items():
        assert torch.allclose(_loss(TrainConfig(loss=name), out, target), value)
    with pytest.raises(SrnlError, match="l1, l2 or charbonnier"):
        TrainConfig(loss="l3")


def test_a_config_with_a_base_overrides_it_key_by_key_and_tables_field_by_field(tmp_path):
    child = tmp_path / "phase2.toml"
    child.write_text('base = "photo-x2-1"\nsteps = 7\n[degradation]\njpeg_prob = 0.5\n'
                     '[model]\nblocks = 3\n')
    parent, merged = load_toml("photo-x2-1"), load_toml(str(child))
    assert merged["steps"] == 7 and merged["lr"] == parent["lr"]
    assert merged["degradation"] == {**parent["degradation"], "jpeg_prob": 0.5}
    assert merged["model"] == {**parent["model"], "blocks": 3}
    loop = tmp_path / "loop.toml"
    loop.write_text(f'base = "{loop}"\n')
    with pytest.raises(SrnlError, match="cycle"):
        load_toml(str(loop))


def test_a_time_limit_ends_the_run_saved_with_its_schedule_decayed(tmp_path):
    cfg = tiny_cfg(tmp_path, steps=50, time_limit=1e-6)
    said = []
    train(cfg, echo=said.append)
    ckpt = load_checkpoint(Path(cfg.out) / "last.pt")
    assert ckpt["step"] == 1 and any("time limit" in s for s in said)
    # Past the limit the cosine is at its floor, whatever the step.
    assert lr_factor(cfg, 5, time_used=1.0) == pytest.approx(cfg.min_lr_ratio)
