import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import smooth_image
from srnl.errors import SrnlError
from srnl.models import aliasing
from srnl.models.aliasing import (AliasingDetector, DetectorConfig, aliasing_logit,
                                  load_detector, looks_aliased, tile_origins)
from srnl.models.registry import PRETRAINED, for_input

SAMPLE = Path(__file__).parent.parent / "data" / "astronaut.png"


def sample(size: int | None = None) -> np.ndarray:
    with Image.open(SAMPLE) as im:
        im = im.convert("RGB")
        return np.asarray(im if size is None else im.resize((size, size), Image.BICUBIC))


def test_tiles_cover_both_ends_of_a_side_and_a_small_side_whole():
    assert tile_origins(100, 256, 4) == [0]
    assert tile_origins(512, 256, 4) == [0, 256]  # no pixel read twice where tiles cover it
    starts = tile_origins(1000, 256, 4)
    assert starts[0] == 0 and starts[-1] == 1000 - 256 and len(starts) == 4


def test_a_picture_within_one_tile_is_read_as_the_network_reads_it():
    torch.manual_seed(0)
    det = AliasingDetector(DetectorConfig(features=4)).eval().requires_grad_(False)
    rgb = smooth_image(40, 56).astype(np.float32) / 255
    expected = det(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0]
    assert aliasing_logit(rgb, det) == pytest.approx(float(expected), abs=1e-5)


def test_an_8_bit_picture_reads_as_its_float_twin():
    torch.manual_seed(0)
    det = AliasingDetector(DetectorConfig(features=4)).eval().requires_grad_(False)
    rgb = sample()[::2, ::2]
    assert aliasing_logit(rgb, det) == aliasing_logit(rgb.astype(np.float32) / 255, det)
    assert aliasing_logit(rgb, det) != aliasing_logit(rgb.astype(np.float32), det)


def test_a_large_picture_is_read_from_a_bounded_number_of_tiles(monkeypatch):
    seen = []
    det = AliasingDetector(DetectorConfig(features=4)).eval()
    energies = det.energies
    monkeypatch.setattr(det, "energies", lambda x: seen.append(x.shape) or energies(x))
    aliasing_logit(np.zeros((3000, 2000, 3), np.float32), det)
    assert len(seen) <= aliasing.TILES
    assert all(s[-2:] == (aliasing.TILE, aliasing.TILE) for s in seen)


@pytest.mark.parametrize("name", ["photo-x2", "photo-x3", "photo-x4"])
def test_shipped_upscalers_send_every_nth_pixel_input_to_their_aliased_model(name):
    step = PRETRAINED[name].scale
    hr = sample()
    every_nth = hr[::step, ::step].astype(np.float32) / 255
    prefiltered = sample(512 // step).astype(np.float32) / 255
    assert for_input(name, every_nth) == PRETRAINED[name].aliased
    assert for_input(name, prefiltered) == name


def test_files_networks_and_models_without_an_aliased_model_are_never_swapped():
    every_2nd = sample()[::2, ::2].astype(np.float32) / 255
    assert looks_aliased(every_2nd)
    for model in ("x2", "x3", PRETRAINED["photo-x2"].path, None):
        assert for_input(model, every_2nd) == model


def test_a_file_that_is_not_a_detector_is_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"format": "something-else"}, bad)
    with pytest.raises(SrnlError, match="not an srnl aliasing detector file"):
        load_detector(bad)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(SrnlError, match="not a readable aliasing detector file"):
        load_detector(tmp_path / "junk.pt")


def test_train_detector_writes_a_detector_that_loads(srnl, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for k in range(3):
        Image.fromarray(smooth_image(140, 140, seed=k)).save(folder / f"{k}.png")
    out = tmp_path / "det.pt"
    code, stdout, err = srnl("train-detector", folder, "-o", out, "--patches", 120, "--epochs", 1)
    assert code == 0, err
    assert "wrote" in stdout and "epoch 1/1" in err
    det = load_detector(out)
    assert det.config.features == DetectorConfig().features
    code, _, err = srnl("train-detector", folder, "-o", out, "--patches", 120)
    assert code != 0 and "exists" in err and "--overwrite" in err


@pytest.mark.parametrize("flag, value", [("--patches", 99), ("--epochs", 0)])
def test_train_detector_names_the_bad_option(srnl, tmp_path, flag, value):
    code, _, err = srnl("train-detector", tmp_path, "-o", tmp_path / "det.pt", flag, value)
    assert code != 0 and err.startswith(f"error: {flag}:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "det.pt").exists()


def test_upscale_names_the_model_that_ran_on_each_picture(srnl, tmp_path):
    Image.fromarray(np.ascontiguousarray(sample()[::2, ::2])).save(tmp_path / "thumb.png")
    Image.fromarray(sample(256)).save(tmp_path / "smooth.png")
    code, _, err = srnl("upscale", tmp_path / "thumb.png", tmp_path / "smooth.png",
                        "--json", tmp_path / "run.json")
    assert code == 0, err
    results = json.loads((tmp_path / "run.json").read_text())
    ran = {Path(r["input"]).name: r["model"] for r in results}
    assert ran == {"thumb.png": "photo-x2-aliased", "smooth.png": "photo-x2"}
