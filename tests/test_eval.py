import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_image
from srnl.eval.compare import best_box, panel_size
from srnl.degrade import bicubic_resize, modcrop
from srnl.eval.restorers import load_method
from srnl.eval.runner import plan, run_job
from srnl.metrics import sr_scores

BENCHMARK = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "benchmark"
REQUIRED = {"dataset", "method", "task", "scale", "sigma", "psnr", "ssim", "images", "seconds"}


@pytest.fixture
def folder(tmp_path):
    """Two colour images, one of odd size (modcrop), and a greyscale one, as a plain folder."""
    root = tmp_path / "Tiny"
    root.mkdir()
    Image.fromarray(smooth_image(40, 48, seed=0, noise=0.02)).save(root / "a.png")
    Image.fromarray(smooth_image(37, 45, seed=1, noise=0.02)).save(root / "b.png")
    grey = smooth_image(36, 36, seed=2, channels=1, noise=0.02)
    Image.fromarray(grey, "L").save(root / "c_grey.png")
    return root


def _records(srnl, *args):
    out = Path(args[args.index("--data") + 1]).parent / "records.json"
    code, stdout, err = srnl("eval", *args, "--json", out)
    assert code == 0, err
    return json.loads(out.read_text()), stdout


def test_eval_baselines_and_models_write_complete_records(srnl, folder, model_file):
    sr_model, dn_model = model_file(), model_file(task="denoise", scale=1)
    records, out = _records(srnl, "-m", "bicubic", "-m", sr_model, "-m", "noisy", "-m", "nlm",
                            "-m", "nlm-auto", "-m", dn_model, "--data", folder, "--sigma", "25")
    assert [(r["method"], r["task"], r["scale"], r["sigma"]) for r in records] == [
        ("bicubic", "sr", 2, None), (str(sr_model), "sr", 2, None), ("noisy", "denoise", 1, 25),
        ("nlm", "denoise", 1, 25), ("nlm-auto", "denoise", 1, 25),
        (str(dn_model), "denoise", 1, 25)]
    for r in records:
        assert REQUIRED <= set(r) and r["dataset"] == "Tiny" and r["images"] == 3
        assert 0 < r["psnr"] < 60 and 0 < r["ssim"] <= 1 and r["seconds"] >= 0
        assert r["tiled"] == 0
    by = {r["method"]: r for r in records}
    assert by["nlm"]["psnr"] > by["noisy"]["psnr"] + 3
    assert by["bicubic"]["lr"] == "pillow-bicubic" and by["noisy"]["clip"] is False
    assert "bicubic" in out and "σ25" in out and "shave = scale" in out


def test_eval_is_deterministic_and_limit_takes_the_first_images(srnl, folder, model_file):
    args = ["-m", "nlm", "-m", "noisy", "-m", model_file(task="denoise", scale=1),
            "--sigma", "15,50", "--data", folder]
    first, _ = _records(srnl, *args)
    second, _ = _records(srnl, *args)
    drop = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]
    assert drop(first) == drop(second)
    table = folder.parent / "limited.csv"
    [limited], _ = _records(srnl, "-m", "bicubic", "--data", folder, "--limit", "1",
                            "--per-image", "--scale", "3", "--csv", table)
    assert limited["images"] == 1 and [p["image"] for p in limited["per_image"]] == ["a"]
    rows = list(csv.DictReader(open(table)))
    assert [(r["image"], r["images"], r["scale"]) for r in rows] == [("", "1", "3"), ("a", "1", "3")]


def test_benchmark_folders_can_be_given_as_arguments(srnl, folder, tmp_path):
    # The form `srnl eval -m bicubic .../{Set5,Set14}` expands to.
    other = tmp_path / "Other"
    other.mkdir()
    Image.fromarray(smooth_image(32, 32, seed=5)).save(other / "d.png")
    code, _, err = srnl("eval", "-m", "bicubic", folder, other, "--json", tmp_path / "r.json")
    assert code == 0, err
    records = json.loads((tmp_path / "r.json").read_text())
    assert [(r["dataset"], r["images"]) for r in records] == [("Tiny", 3), ("Other", 1)]


def test_clip_is_recorded_and_changes_the_noisy_input(srnl, folder):
    plain, _ = _records(srnl, "-m", "noisy", "--data", folder, "--sigma", "50")
    clipped, _ = _records(srnl, "-m", "noisy", "--data", folder, "--sigma", "50", "--clip")
    assert plain[0]["clip"] is False and clipped[0]["clip"] is True
    assert clipped[0]["psnr"] > plain[0]["psnr"]  # clipping can only move values closer


def test_identical_output_shows_inf_in_table_json_csv_and_markdown(srnl, tmp_path):
    # Bicubic reproduces a flat image exactly: PSNR is infinite.
    root = tmp_path / "Flat"
    root.mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(root / "flat.png")
    code, out, _ = srnl("eval", "-m", "bicubic", "--data", root, "--json", tmp_path / "r.json",
                        "--csv", tmp_path / "r.csv", "--markdown", tmp_path / "r.md")
    assert code == 0
    [record] = json.loads((tmp_path / "r.json").read_text())
    assert record["psnr"] == "inf" and float(record["psnr"]) == math.inf and record["ssim"] == 1
    [row] = csv.DictReader(open(tmp_path / "r.csv"))
    assert float(row["psnr"]) == math.inf
    assert "inf / 1.0000" in (tmp_path / "r.md").read_text()
    assert " inf " in out


def test_edsr_layout_uses_the_provided_lr(srnl, tmp_path):
    hr = modcrop(smooth_image(41, 50), 2)
    # A nearest-neighbour LR: provably not what Pillow bicubic would make.
    lr = hr[::2, ::2].copy()
    (tmp_path / "Set" / "HR").mkdir(parents=True)
    (tmp_path / "Set" / "LR_bicubic" / "X2").mkdir(parents=True)
    Image.fromarray(hr).save(tmp_path / "Set" / "HR" / "pic.png")
    Image.fromarray(lr).save(tmp_path / "Set" / "LR_bicubic" / "X2" / "picx2.png")
    [record], _ = _records(srnl, "-m", "bicubic", "--data", tmp_path / "Set")
    expected = sr_scores(bicubic_resize(lr, (hr.shape[1], hr.shape[0])), hr, 2)
    assert record["lr"] == "provided" and record["psnr"] == pytest.approx(expected[0], abs=1e-9)
    # x3 has no provided LR: the LR is made from the HR instead.
    [record], _ = _records(srnl, "-m", "bicubic", "--data", tmp_path / "Set", "--scale", "3")
    assert record["lr"] == "pillow-bicubic"


def test_div2k_valid_layout(tmp_path):
    (tmp_path / "DIV2K_valid_HR").mkdir()
    (tmp_path / "DIV2K_train_HR").mkdir()
    Image.fromarray(smooth_image(32, 32)).save(tmp_path / "DIV2K_valid_HR" / "0801.png")
    Image.fromarray(smooth_image(32, 32)).save(tmp_path / "DIV2K_train_HR" / "0001.png")
    [job] = plan([load_method("bicubic")], [tmp_path], [2], [])
    assert job.names == ["0801"]


def test_outputs_saved_panels_written_and_tiling_reported(srnl, model_file, tmp_path):
    folder = tmp_path / "Tiny"  # LR images just over the smallest tile the CLI accepts
    folder.mkdir()
    for name, (h, w) in {"a": (140, 150), "b": (133, 147), "c": (136, 136)}.items():
        Image.fromarray(smooth_image(h, w, seed=len(name), noise=0.02)).save(folder / f"{name}.png")
    model = model_file(nonlocal_after=())
    [record], out = _records(srnl, "-m", model, "--data", folder, "--tile", "64",
                             "--save-images", tmp_path / "saved",
                             "--compare-image", tmp_path / "panels")
    assert record["tile"] == 64 and record["tiled"] == 3 and "3/3 at 64" in out
    with Image.open(tmp_path / "saved" / "Tiny" / model.stem / "x2" / "b.png") as im:
        assert im.size == (146, 132)
    with Image.open(tmp_path / "panels" / "Tiny_x2.png") as im:
        assert im.size == panel_size(3)  # ground truth, bicubic, the model


def test_compare_writes_panels_of_the_expected_size(srnl, tmp_path, model_file):
    image = tmp_path / "photo.png"
    Image.fromarray(smooth_image(64, 80)).save(image)
    code, out, err = srnl("compare", image, "-m", model_file())
    assert code == 0, err
    with Image.open(tmp_path / "photo_compare.png") as im:
        assert im.size == panel_size(3)  # ground truth, bicubic, model
    assert "bicubic" in out and " dB / " in out
    denoiser = model_file(task="denoise", scale=1)
    assert srnl("compare", image, "-m", denoiser, "--sigma", "30", "-o", tmp_path / "dn.png",
                "--box", "8,8,40,20")[0] == 0
    with Image.open(tmp_path / "dn.png") as im:
        assert im.size == panel_size(4)  # ground truth, noisy, NLM, model
    code, _, _ = srnl("compare", image, "-m", denoiser, "--no-reference", "-o", tmp_path / "nr.png")
    assert code == 0
    with Image.open(tmp_path / "nr.png") as im:
        assert im.size == panel_size(3)  # input, NLM, model
    code, _, err = srnl("compare", image, "-m", denoiser, "-o", tmp_path / "nr.png")
    assert code == 2 and "--overwrite" in err


@pytest.mark.parametrize("args,message", [
    (["-m", "bicubic", "--data", "{missing}"], "no such folder"),
    (["-m", "bicubic"], "no benchmark folder"),
    (["-m", "bicubic", "--data", "{empty}"], "no images found"),
    (["-m", "sharpest", "--data", "{folder}"], "unknown model"),
    (["-m", "nlm", "--data", "{folder}", "--sigma", "loud"], "--sigma"),
    (["-m", "{x4}", "--data", "{folder}", "--scale", "2"], "upscales x4"),
    (["-m", "bicubic", "--data", "{folder}", "--limit", "0"], "--limit"),
])
def test_bad_eval_input_gives_one_line_errors(srnl, folder, tmp_path, model_file, args, message):
    (tmp_path / "empty").mkdir()
    names = dict(missing=tmp_path / "nope", empty=tmp_path / "empty", folder=folder)
    if "{x4}" in args:
        names["x4"] = model_file(scale=4)
    code, _, err = srnl("eval", *[a.format(**names) for a in args])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_compare_box_outside_the_image_is_refused(srnl, tmp_path, model_file):
    image = tmp_path / "photo.png"
    Image.fromarray(smooth_image(32, 32)).save(image)
    code, _, err = srnl("compare", image, "-m", model_file(), "--box", "20,0,20,20")
    assert code == 2 and "does not fit the 32x32 output" in err


PUBLISHED = {  # field guide section 1: bicubic PSNR / SSIM
    ("Set5", 2): (33.66, 0.9299), ("Set5", 3): (30.39, 0.8682), ("Set5", 4): (28.42, 0.8104),
    ("B100", 2): (29.56, 0.8431), ("B100", 3): (27.21, 0.7385), ("B100", 4): (25.96, 0.6675),
}


@pytest.mark.skipif(not BENCHMARK.is_dir(), reason=f"benchmark images not found at {BENCHMARK} "
                    "(../shared/data/benchmark beside the project checkout)")
@pytest.mark.parametrize("dataset", ["Set5", "B100"])
def test_bicubic_reproduces_the_published_numbers(dataset):
    jobs = plan([load_method("bicubic")], [BENCHMARK / dataset], [2, 3, 4], [])
    for job in jobs:
        record = run_job(job)
        psnr, ssim = PUBLISHED[dataset, job.setting.scale]
        assert record.psnr == pytest.approx(psnr, abs=0.05), job.setting.label
        assert record.ssim == pytest.approx(ssim, abs=0.003), job.setting.label


def test_best_box_finds_where_the_gain_is():
    gain = np.zeros((60, 80))
    gain[10:30, 30:50] = 1.0
    gain[0:5, 0:5] = -3.0
    assert best_box(gain, side=20) == (30, 10, 20, 20)
    assert best_box(gain, side=100) == (0, 0, 80, 60)  # clipped to the image


def test_eval_degradation_classes_are_seeded_labelled_and_checked(srnl, folder):
    args = ["-m", "bicubic", "--data", folder, "-d", "bicubic,jpeg30,noise10"]
    records, out = _records(srnl, *args)
    by = {r["degradation"]: r for r in records}
    assert set(by) == {None, "jpeg30", "noise10"}
    assert by[None]["psnr"] > by["jpeg30"]["psnr"] and by[None]["psnr"] > by["noise10"]["psnr"]
    assert by[None]["lr"] == "pillow-bicubic" and by["jpeg30"]["lr"] is None
    assert "jpeg30" in out and "seeded" in out
    again, _ = _records(srnl, *args)
    assert [r["psnr"] for r in again] == [r["psnr"] for r in records]
    code, _, err = srnl("eval", "-m", "bicubic", "--data", folder, "-d", "jpg50")
    assert code == 2 and "unknown degradation" in err
