import pytest

from srnl.errors import SrnlError
from srnl.models.card import ModelCard
from srnl.models.checkpoint import inference_weights, load_checkpoint
from srnl.models.registry import PRETRAINED, default_model, load_model


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_every_shipped_file_is_what_its_registry_entry_says(name):
    spec = PRETRAINED[name]
    ckpt = load_checkpoint(spec.path)
    assert ckpt["config"]["task"] == spec.task and ckpt["config"]["scale"] == spec.scale
    assert set(ckpt) == {"format", "config", "model", "meta"}  # inference weights only
    assert spec.path.stat().st_size < 4 * 2**20
    card = load_model(name).card
    assert card.steps and card.data != "-" and card.metrics


def test_defaults_are_shipped_models_of_their_task_and_scale():
    for task, scale in (("sr", 2), ("sr", 3), ("sr", 4), ("denoise", 1)):
        spec = PRETRAINED[default_model(task, scale)]
        assert (spec.task, spec.scale) == (task, scale)
    with pytest.raises(SrnlError, match="no shipped model"):
        default_model("sr", 8)


def test_checkpoints_run_their_ema_weights_where_they_have_them():
    assert inference_weights({"model": {}, "ema": {"w": 1}}) == "ema"
    assert inference_weights({"model": {}, "ema": None}) == "model"
    assert inference_weights({"model": {}}) == "model"


def test_model_card_keeps_unknown_keys_and_round_trips():
    d = {"data": "T91", "steps": 10, "metrics": {"Set5": {"psnr": 37.0}}, "note": "x"}
    card = ModelCard.from_dict(d)
    assert card.steps == 10 and card.extra == {"note": "x"} and card.to_dict() == d
    assert ModelCard.from_dict(None) == ModelCard()
