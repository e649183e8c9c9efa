"""The command line refuses what it cannot do in one line (exit 2) before doing any work, never
loses a file, and says what happened when it is stopped."""
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `srnl` run from this checkout in a fresh process (with the arguments that follow).
SRNL = "import sys; sys.argv[0] = 'srnl'; from srnl.cli import main; main()"
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(smooth_image(24, 32)).save(path)
    return path


@pytest.fixture
def blocked(tmp_path):
    """A path under a regular file: nothing can be written there."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    return blocker


def _one_line_error(code, err, *fragments):
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert all(f in lines[0] for f in fragments), err


def test_cuda_without_a_gpu_is_a_one_line_error(srnl, tmp_path, photo, model_file, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    denoiser = model_file(task="denoise", scale=1)
    for args in (["upscale", photo, "-m", model_file()], ["denoise", photo, "-m", denoiser],
                 ["eval", "-m", "bicubic", tmp_path],
                 ["train", "--data", tmp_path, "--out", tmp_path / "run"]):
        _one_line_error(*srnl(*args, "--device", "cuda")[::2], "no CUDA GPU")


def test_unwritable_destinations_are_refused_before_the_work(srnl, tmp_path, photo, blocked,
                                                             model_file, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the work started before the destination was checked")

    monkeypatch.setattr("srnl.eval.runner.run_job", must_not_run)
    monkeypatch.setattr("srnl.bench.run_bench", must_not_run)
    monkeypatch.setattr("srnl.eval.compare.compare_image", must_not_run)
    model = model_file()
    for args in (["compare", photo, "-m", model, "-o", blocked / "panel.png"],
                 ["eval", "-m", "bicubic", tmp_path, "--json", blocked / "r.json"],
                 ["eval", "-m", "bicubic", tmp_path, "--csv", blocked / "r.csv"],
                 ["eval", "-m", "bicubic", tmp_path, "--save-images", blocked / "images"],
                 ["eval", "-m", "bicubic", tmp_path, "--compare-image", blocked],
                 ["train", "--data", tmp_path, "--out", blocked / "run"],
                 ["export", model, "-o", blocked / "model.pt"],
                 ["bench", "--json", blocked / "bench.json"],
                 ["upscale", photo, "-m", model, "--json", blocked / "summary.json"]):
        _one_line_error(*srnl(*args)[::2], "blocker")
    _one_line_error(*srnl("bench", "-m", tmp_path / "no-such-model.pt")[::2], "unknown model")
    assert not (tmp_path / "photo_x2.png").exists()


@pytest.mark.parametrize("args,fragment", [
    (["upscale", "--threads", "-2"], "--threads"),
    (["denoise", "--sigma", "-3"], "0 to 255"),
    (["denoise", "--sigma", "-1e9"], "0 to 255"),
    (["denoise", "--sigma", "nan"], "0 to 255"),
    (["denoise", "--sigma", "inf"], "0 to 255"),
    (["compare", "--sigma", "-3"], "0 to 255"),
    (["upscale", "--tile", "7"], "--tile"),
    (["upscale", "--tile", "16"], "--tile"),
    (["upscale", "--tile", "64", "--tile-overlap", "40"], "--tile-overlap"),
    (["upscale", "--tile-overlap", "-1"], "--tile-overlap"),
    (["upscale", "--ext", "jgp"], "jgp"),
    (["upscale", "--suffix", "/../../x"], "path separator"),
    (["upscale", "--skip-existing", "--overwrite"], "--skip-existing"),
])
def test_bad_options_are_refused_in_one_line(srnl, photo, model_file, args, fragment):
    command, options = args[0], args[1:]
    model = model_file(task="denoise", scale=1) if command == "denoise" else model_file()
    _one_line_error(*srnl(command, photo, "-m", model, *options)[::2], fragment)
    assert not list(photo.parent.glob("photo_*"))


def test_train_refuses_a_negative_learning_rate(srnl, tmp_path):
    code, _, err = srnl("train", "--data", tmp_path, "--lr", "-1", "--out", tmp_path / "run")
    _one_line_error(code, err, "learning rate")
    assert not (tmp_path / "run").exists()


def test_a_model_of_one_scale_implies_it(srnl, photo, model_file):
    x4 = model_file(scale=4)
    assert srnl("upscale", photo, "-m", x4)[0] == 0
    with Image.open(photo.parent / "photo_x4.png") as im:
        assert im.size == (128, 96)
    # A smaller factor runs the model and shrinks its output.
    code, _, _ = srnl("upscale", photo, "-m", x4, "-s", "2")
    with Image.open(photo.parent / "photo_x2.png") as im:
        assert code == 0 and im.size == (64, 48)


def test_outputs_that_would_collide_are_refused_before_any_work(srnl, tmp_path, model_file):
    Image.fromarray(smooth_image(16, 16)).save(tmp_path / "a.png")
    Image.fromarray(smooth_image(16, 16, seed=1)).save(tmp_path / "a.jpg")
    code, _, err = srnl("upscale", tmp_path, "--ext", "png", "--overwrite", "-m", model_file())
    _one_line_error(code, err, "would both be written")
    assert not (tmp_path / "a_x2.png").exists()


def test_a_folder_job_can_be_resumed_quietly_with_a_json_summary(srnl, tmp_path, model_file):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b"):
        Image.fromarray(smooth_image(16, 20)).save(src / f"{name}.png")
    (src / "a_x2.png").write_bytes(b"keep")  # finished by an earlier, interrupted run
    code, out, err = srnl("upscale", src, "-m", model_file(), "--skip-existing", "--quiet",
                          "--json", tmp_path / "summary.json")
    assert code == 0 and out == "" and err == ""
    assert (src / "a_x2.png").read_bytes() == b"keep"
    with Image.open(src / "b_x2.png") as im:
        assert im.size == (40, 32)
    rows = json.loads((tmp_path / "summary.json").read_text())
    a, b = sorted(rows, key=lambda r: r["input"])
    assert Path(a["input"]).name == "a.png" and a["status"] == "skipped"
    assert b == {"input": str(src / "b.png"), "output": str(src / "b_x2.png"),
                 "input_size": [20, 16], "output_size": [40, 32], "seconds": b["seconds"],
                 "status": "ok", "error": None, "note": None, "model": "tiny_0.pt"}


def test_version(srnl):
    code, out, _ = srnl("--version")
    assert code == 0 and out.strip() == "srnl 0.1.0"


def test_export_needs_overwrite_to_replace_a_file(srnl, tmp_path, model_file):
    model, target = model_file(), tmp_path / "small.pt"
    target.write_bytes(b"keep")
    code, _, err = srnl("export", model, "-o", target)
    _one_line_error(code, err, "--overwrite")
    assert target.read_bytes() == b"keep"
    assert srnl("export", model, "-o", target, "--overwrite")[0] == 0
    assert target.read_bytes() != b"keep"


def test_ctrl_c_says_how_many_files_were_finished(srnl, tmp_path, model_file, monkeypatch):
    from srnl import files

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(smooth_image(16, 16, seed=i)).save(src / f"{i}.png")
    real_write, written = files.write_picture, []

    def write_then_interrupt(pic, path, quality):
        if written:
            raise KeyboardInterrupt
        real_write(pic, path, quality)
        written.append(path)

    monkeypatch.setattr(files, "write_picture", write_then_interrupt)
    (tmp_path / "in" / "0_x2.png").write_bytes(b"kept")  # done by an earlier run
    code, _, err = srnl("upscale", src, "-m", model_file(), "--skip-existing",
                        "--json", tmp_path / "run.json")
    assert code == 130
    assert "interrupted: 1 of 3 files finished (1 skipped, 1 interrupted)" in err
    # The summary that lets the job be resumed is written even so.
    statuses = [r["status"] for r in json.loads((tmp_path / "run.json").read_text())]
    assert statuses == ["skipped", "ok", "interrupted"]


def test_stdin_to_stdout(tmp_path, model_file):
    png = io.BytesIO()
    Image.fromarray(smooth_image(16, 20)).save(png, "PNG")
    model = model_file()
    for ext, fmt in ((None, "PNG"), ("jpg", "JPEG")):
        done = subprocess.run([sys.executable, "-c", SRNL, "upscale", "-", "-o", "-", "-m", model]
                              + (["--ext", ext] if ext else []),
                              input=png.getvalue(), capture_output=True, timeout=300, cwd=ROOT,
                              env=ONE_THREAD)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        with Image.open(io.BytesIO(done.stdout)) as im:
            assert im.format == fmt and im.size == (40, 32)
        assert b"ok" in done.stderr  # the summary goes to stderr, beside the image


SLOW_WRITER = """
import sys, time
from PIL import Image

def slow_save(self, fp, *args, **kwargs):
    with open(fp, "wb") as f:
        f.write(b"partial")
    print("writing", file=sys.stderr, flush=True)
    # Short sleeps, as a real encoder returns to Python: a process-wide SIGTERM may land on another
    # thread (progress bar, torch), and Python then runs the handler only when the main thread
    # next runs Python code, which one long sleep would put off for its whole length.
    for _ in range(600):
        time.sleep(0.1)

Image.Image.save = slow_save
sys.argv[0] = "srnl"
from srnl.cli import main
main()
"""


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path, photo, model_file):
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, "upscale", str(photo),
                             "-m", str(model_file())], stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=ONE_THREAD)
    try:
        deadline = time.monotonic() + 120
        while "writing" not in proc.stderr.readline():
            assert time.monotonic() < deadline and proc.poll() is None
        assert list(tmp_path.glob(".*.tmp*"))  # the half-written file is there
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted: 0 of 1 files finished" in err
    assert not list(tmp_path.glob(".*.tmp*")) and not (tmp_path / "photo_x2.png").exists()


def test_the_command_line_starts_without_torch():
    done = subprocess.run([sys.executable, "-c", "import sys, srnl.cli; print(sorted(m for m in "
                           "('torch', 'skimage', 'numpy', 'PIL') if m in sys.modules))"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


HELP_WITHOUT_TORCH = """
import sys
sys.argv = ["srnl", *sys.argv[1:]]
from srnl.cli import main
try:
    main()
except SystemExit as e:
    print("exit", e.code, "torch" in sys.modules, file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["upscale", "--help"],
                                  ["denoise", "--help"], ["eval", "--help"], ["train", "--help"],
                                  ["export", "--help"], ["upscale"], ["upscale", "--nope", "x"]])
def test_help_version_and_usage_errors_never_import_torch(args):
    done = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TORCH, *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.stderr.splitlines()[-1].endswith("False"), done.stderr


def test_help_fits_80_columns_in_the_usual_shape():
    done = subprocess.run([sys.executable, "-c", SRNL, "upscale", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0
    assert "Usage: srnl upscale [OPTIONS] INPUT..." in done.stdout
    assert max(map(len, done.stdout.splitlines())) <= 80
    assert "<bool>" not in done.stdout and "{" not in done.stdout.splitlines()[0]


@pytest.mark.parametrize("name", ["result.jepg", "photo.heic", "out.xyz"])
def test_an_output_with_an_unknown_extension_is_an_error_not_a_folder(srnl, photo, model_file,
                                                                      name):
    code, _, err = srnl("upscale", photo, "-m", model_file(), "-o", photo.parent / name)
    _one_line_error(code, err, name)
    assert not (photo.parent / name).exists()


def test_a_folder_output_is_named_by_a_slash_or_no_extension(srnl, photo, model_file):
    model = model_file()
    assert srnl("upscale", photo, "-m", model, "-o", f"{photo.parent / 'v1.0'}/")[0] == 0
    assert srnl("upscale", photo, "-m", model, "-o", photo.parent / "plain")[0] == 0
    assert (photo.parent / "v1.0" / "photo_x2.png").exists()
    assert (photo.parent / "plain" / "photo_x2.png").exists()


def test_a_too_small_width_names_the_width(srnl, photo, model_file):
    code, out, err = srnl("upscale", photo, "-m", model_file(), "--width", "10")
    assert code == 1 and "--width" in err and "--scale" not in err


def test_the_summary_names_the_model_that_ran(srnl, photo, model_file, tmp_path):
    model = model_file()
    code, out, _ = srnl("upscale", photo, "-m", model, "--json", tmp_path / "s.json")
    assert code == 0 and model.name in out and "x2 model" not in out
    assert json.loads((tmp_path / "s.json").read_text())[0]["model"] == model.name


def test_train_help_shows_the_trainers_defaults(srnl):
    code, out, _ = srnl("train", "--help")
    flat = "".join(c for c in out if c not in "│ \n")
    assert code == 0
    for text in ("(default:0.001)", "(default:2000)", "(default:cosine)", "(default:32)"):
        assert text in flat, text


def test_models_lists_the_training_set_as_shipped_and_no_empty_column(srnl):
    code, out, _ = srnl("models")
    assert code == 0 and "status" not in out
    # T91 + BSDS400 is 91 + 400 images; the files once said 481.
    assert "491 images" in out and "481 images" not in out


def test_a_given_model_serves_any_factor_up_to_its_scale(srnl, photo, model_file):
    x4 = model_file(scale=4)
    code, _, err = srnl("upscale", photo, "-m", x4, "--width", "70", "-o", photo.parent / "w.png")
    assert code == 0, err
    with Image.open(photo.parent / "w.png") as im:
        assert im.width == 70
    code, _, err = srnl("upscale", photo, "-m", model_file(), "-s", "3")
    assert code == 2 and "x3" in err
