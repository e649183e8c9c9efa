import sys

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_image


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(smooth_image(24, 32)).save(path)
    return path


def test_upscale_writes_beside_the_input(srnl, photo, model_file):
    code, out, _ = srnl("upscale", photo, "-m", model_file())
    assert code == 0
    with Image.open(photo.parent / "photo_x2.png") as im:
        assert im.size == (64, 48)
    assert "photo_x2.png" in out


def test_folder_to_folder_recursive_with_suffix_and_ext(srnl, tmp_path, model_file):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(smooth_image(16, 16)).save(src / "a.png")
    Image.fromarray(smooth_image(16, 16, seed=1)).save(src / "sub" / "b.jpg")
    code, _, _ = srnl("upscale", src, "-o", tmp_path / "out", "-r", "--suffix", "_big",
                      "--ext", "webp", "-m", model_file())
    assert code == 0
    assert sorted(p.relative_to(tmp_path / "out").as_posix()
                  for p in (tmp_path / "out").rglob("*.webp")) == ["a_big.webp", "sub/b_big.webp"]


def test_existing_output_needs_overwrite_and_input_is_never_overwritten(srnl, photo, model_file):
    model = model_file()
    target = photo.parent / "photo_x2.png"
    target.write_bytes(b"keep")
    code, _, err = srnl("upscale", photo, "-m", model)
    assert code == 1 and "--overwrite" in err and target.read_bytes() == b"keep"
    assert srnl("upscale", photo, "-m", model, "--overwrite")[0] == 0
    original = photo.read_bytes()
    code, _, err = srnl("upscale", photo, "-o", photo, "-m", model, "--overwrite")
    assert code == 1 and "overwrite its input" in err and photo.read_bytes() == original


@pytest.mark.parametrize("content,message", [
    (b"", "empty file"),
    (b"this is not an image", "not an image"),
    ("truncated", "corrupt or truncated"),
])
def test_bad_files_give_one_line_errors(srnl, tmp_path, model_file, content, message):
    bad = tmp_path / "bad.png"
    if content == "truncated":
        Image.fromarray(smooth_image(64, 64)).save(bad)
        content = bad.read_bytes()[:300]
    bad.write_bytes(content)
    code, _, err = srnl("upscale", bad, "-m", model_file())
    assert code == 1
    [line] = [l for l in err.splitlines() if "error" in l]
    assert message in line and "bad.png" in line
    assert not list(tmp_path.glob("*_x2*")) and not list(tmp_path.glob(".*tmp*"))


def test_missing_input_and_unknown_model(srnl, tmp_path, photo, model_file):
    code, _, err = srnl("upscale", tmp_path / "nope.png", "-m", model_file())
    assert code == 2 and "no such file" in err
    code, _, err = srnl("upscale", photo, "-m", tmp_path / "nope.pt")
    assert code == 2 and "unknown model" in err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    code, _, err = srnl("upscale", photo, "-m", tmp_path / "junk.pt")
    assert code == 2 and "not a readable model file" in err


def test_decompression_bomb_guard(srnl, photo, model_file):
    code, _, err = srnl("upscale", photo, "-m", model_file(), "--max-pixels", 100)
    assert code == 1 and "pixel limit" in err


def test_unwritable_output(srnl, tmp_path, photo, model_file):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = srnl("upscale", photo, "-o", blocker / "out", "-m", model_file())
    assert code == 1 and "cannot write" in err


def test_folder_mode_skips_bad_files_and_reports(srnl, tmp_path, model_file):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(smooth_image(16, 16)).save(src / "good.png")
    (src / "broken.png").write_bytes(b"nope")
    code, out, err = srnl("upscale", src, "-o", tmp_path / "out", "-m", model_file())
    assert code == 1 and "broken.png" in err
    assert (tmp_path / "out" / "good_x2.png").exists()
    assert not (tmp_path / "out" / "broken_x2.png").exists()


def test_denoise_fixed_and_estimated_sigma(srnl, photo, model_file):
    model = model_file(task="denoise", scale=1)
    assert srnl("denoise", photo, "-m", model, "--sigma", "15")[0] == 0
    with Image.open(photo.parent / "photo_dn.png") as im:
        assert im.size == (32, 24)
    assert srnl("denoise", photo, "-m", model, "--overwrite")[0] == 0
    code, _, err = srnl("denoise", photo, "-m", model, "--sigma", "loud", "--overwrite")
    assert code == 2 and "--sigma" in err


def test_tiled_cli_run_agrees_with_whole_image(srnl, tmp_path, photo, model_file):
    model = model_file(nonlocal_after=())
    Image.fromarray(smooth_image(100, 120)).save(photo)
    srnl("upscale", photo, "-m", model, "-o", tmp_path / "plain.png")
    srnl("upscale", photo, "-m", model, "-o", tmp_path / "tiled.png", "--tile", "64",
         "--tile-overlap", "32")
    a = np.asarray(Image.open(tmp_path / "plain.png"), np.float64)
    b = np.asarray(Image.open(tmp_path / "tiled.png"), np.float64)
    assert np.abs(a - b).max() <= 1
    code, _, err = srnl("upscale", photo, "-m", model, "--tile", "big", "--overwrite")
    assert code == 2 and "--tile" in err


def test_shipped_model_is_listed_and_used_by_default(srnl, photo, monkeypatch):
    from srnl.models.registry import PRETRAINED

    code, out, _ = srnl("models")
    assert code == 0
    for spec in PRETRAINED.values():
        assert f"{spec.name}: {spec.about}"[:40] in " ".join(out.split())
    code, _, _ = srnl("upscale", photo)
    assert code == 0
    with Image.open(photo.parent / "photo_x2.png") as im:
        assert im.size == (64, 48)
    monkeypatch.setattr("srnl.models.registry.DEFAULTS", {})
    code, _, err = srnl("upscale", photo, "-s", "3")
    assert code == 2 and "no shipped model for x3" in err and "--model" in err


def test_export_strips_a_training_checkpoint(srnl, tmp_path, model_file):
    from srnl.models.checkpoint import load_checkpoint

    code, _, _ = srnl("export", model_file(), "-o", tmp_path / "small.pt", "--weights", "model")
    assert code == 0 and set(load_checkpoint(tmp_path / "small.pt")) == {"format", "config", "model", "meta"}
    code, _, err = srnl("export", model_file(), "-o", tmp_path / "x.pt", "--weights", "ema")
    assert code == 2 and "no 'ema' weights" in err


def test_two_processes_share_a_folder_under_torchrun(tmp_path, model_file):
    import os
    import shutil
    import subprocess

    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        Image.fromarray(smooth_image(16, 20, seed=i)).save(src / f"im{i}.png")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node=2", shutil.which("srnl") or "srnl", "upscale", src,
                           "-o", tmp_path / "out", "-m", model_file()],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"im{i}_x2.png" for i in range(5)]
    # one combined summary, printed once, listing every file
    assert all(done.stdout.count(f"im{i}_x2.png") == 1 for i in range(5))
