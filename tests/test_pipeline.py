"""A shipped model's recipe, run on the user's own images, trains the network srnl ships."""
from pathlib import Path

import pytest
from PIL import Image

from conftest import smooth_image
from srnl.errors import SrnlError
from srnl.models.checkpoint import load_checkpoint
from srnl.models.config import ModelConfig
from srnl.models.registry import PRETRAINED
from srnl.train.loop import train
from srnl.train.pipeline import pipeline_names, plan_pipeline, resume_pipeline, run_pipeline

TINY = dict(steps=2, batch=2, patch=16, val_every=1, save_every=1, threads=1, val_holdout=2)


def own_folder(root: Path, n: int = 6) -> Path:
    root.mkdir()
    for i in range(n):
        Image.fromarray(smooth_image(80, 96, seed=i)).save(root / f"mine_{i}.png")
    return root


def test_every_shipped_model_has_a_recipe():
    assert set(pipeline_names()) == set(PRETRAINED)


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_a_shipped_recipe_on_a_users_folder_builds_the_shipped_network(tmp_path, name):
    data = own_folder(tmp_path / "mine")
    last = run_pipeline(name, {**TINY, "data": [str(data)]}, tmp_path / "run", False,
                        train, lambda *a: None)
    phases = PRETRAINED[name].phases
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.is_dir()) == sorted(phases)
    assert last == tmp_path / "run" / phases[-1]
    trained = load_checkpoint(last / "last.pt")
    shipped = load_checkpoint(PRETRAINED[name].path)
    assert ModelConfig.from_dict(trained["config"]) == ModelConfig.from_dict(shipped["config"])
    assert {k: v.shape for k, v in trained["model"].items()} == \
        {k: v.shape for k, v in shipped["model"].items()}


def test_a_users_data_replaces_the_recipes_and_its_validation_set(tmp_path):
    phases = plan_pipeline("photo-x2", {"data": ["mine/"]}, tmp_path)
    assert all(p.config.data == ("mine/",) and p.config.val is None and p.config.val_holdout == 10
               for p in phases)
    assert all(p.config.threads == 0 for p in phases)  # all cores unless asked
    given = plan_pipeline("photo-x2", {"data": ["mine/"], "val": "v/"}, tmp_path)
    assert all(p.config.val == "v/" and p.config.val_holdout == 0 for p in given)
    with pytest.raises(SrnlError, match="no shipped model"):
        plan_pipeline("x5", {}, tmp_path)


def test_a_stopped_pipeline_resumes_with_its_finished_phases_kept(tmp_path):
    data = own_folder(tmp_path / "mine")
    out = tmp_path / "run"
    run_pipeline("photo-x4", {**TINY, "data": [str(data)]}, out, False, train, lambda *a: None)
    first = out / "photo-x4-1" / "last.pt"
    before = first.stat().st_mtime_ns
    (out / "photo-x4-3" / "last.pt").unlink()  # as if stopped before the last phase saved
    said = []
    resume_pipeline(out, train, said.append)
    assert first.stat().st_mtime_ns == before
    assert said[0].endswith("finished earlier") and said[-1].startswith("phase 3/3")
    assert load_checkpoint(out / "photo-x4-3" / "last.pt")["step"] == 2
    with pytest.raises(SrnlError, match="already holds a run"):
        run_pipeline("photo-x4", {"data": [str(data)]}, out, False, train, lambda *a: None)


def test_the_gpu_retrain_plans_every_shipped_model_in_its_slot(tmp_path):
    from srnl.train.retrain import MODELS, OVERHEAD_S, plan_retrain

    jobs = plan_retrain(tmp_path, minutes=9, cores=16)
    assert [j.name for j in jobs] == list(MODELS)
    for job in jobs:
        cfg = job.config
        assert cfg.time_limit == 9 * 60 - OVERHEAD_S and cfg.bf16 and cfg.device == "cuda"
        assert cfg.init == job.name and cfg.batch == 64 and cfg.workers == 1
        assert cfg.model == ModelConfig.from_dict(load_checkpoint(PRETRAINED[job.name].path)["config"])
    with pytest.raises(SrnlError, match="no time"):
        plan_retrain(tmp_path, minutes=1)


def test_a_tiny_retrain_brings_back_one_folder_of_small_files(tmp_path):
    """The prepared GPU command on a CPU, tiny: bf16 autocast runs here too."""
    from srnl.train.retrain import plan_retrain, run_retrain

    data = own_folder(tmp_path / "mine")
    jobs = plan_retrain(tmp_path / "work", minutes=3, device="cpu",
                        models=("x2", "photo-x4", "denoise"),
                        options={"data": [str(data)], "steps": 2, "batch": 2, "patch": 16,
                                 "val_holdout": 2, "bf16": True})
    summaries = run_retrain(tmp_path / "out", jobs, echo=lambda *a: None)
    files = sorted((tmp_path / "out").iterdir())
    assert [f.name for f in files] == ["denoise.pt", "photo-x4.pt", "retrain.jsonl", "x2.pt"]
    assert all(f.is_file() and f.stat().st_size < 16 * 2**20 for f in files)
    assert [s["steps"] for s in summaries] == [2, 2, 2]
    for name in ("x2", "photo-x4", "denoise"):
        assert load_checkpoint(tmp_path / "out" / f"{name}.pt")["config"]["blocks"] == \
            load_checkpoint(PRETRAINED[name].path)["config"]["blocks"]
