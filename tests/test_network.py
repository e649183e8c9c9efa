import numpy as np
import pytest
import torch

from conftest import tiny_config, tiny_model, trained_like
from srnl.models.checkpoint import load_checkpoint, model_from_checkpoint, model_payload, save_checkpoint
from srnl.models.config import ModelConfig
from srnl.models.layers import fold_weight_norm
from srnl.models.network import build_model


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sr_output_shape(scale):
    model = tiny_model(scale=scale)
    assert model(torch.rand(2, 3, 13, 17)).shape == (2, 3, 13 * scale, 17 * scale)


def test_denoiser_shape_and_noise_map_forms():
    model = tiny_model(task="denoise", scale=1)
    x = torch.rand(2, 3, 12, 16)
    scalar = model(x, 0.1)
    assert scalar.shape == x.shape
    assert torch.allclose(model(x, torch.tensor([0.1, 0.1])), scalar, atol=1e-6)
    assert torch.allclose(model(x, torch.full((2, 1, 12, 16), 0.1)), scalar, atol=1e-6)
    assert not torch.allclose(model(x, 0.3), scalar)


def test_every_conv_is_weight_normalised_and_no_batch_norm():
    model = build_model(tiny_config())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(c, "parametrizations") for c in convs)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_nonlocal_modules_at_configured_positions():
    model = build_model(tiny_config(blocks=4, nonlocal_after=(0, 2)))
    kinds = [type(m).__name__ for m in model.body]
    assert kinds == ["ResBlock", "NonLocalAttention", "ResBlock", "ResBlock", "NonLocalAttention",
                     "ResBlock", "ParametrizedConv2d"]


def test_gradients_reach_every_parameter():
    for kw in ({}, {"scale": 4}, {"task": "denoise", "scale": 1}, {"nonlocal_shared_qk": True}):
        model = tiny_model(**kw)
        x = torch.rand(2, 3, 16, 16)
        out = model(x, 0.1) if model.config.task == "denoise" else model(x)
        out.square().mean().backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (kw, name)


def test_zero_initialised_attention_can_learn():
    """At init the attention output projection is exactly zero, yet its scale gets a gradient."""
    model = build_model(tiny_config())
    attention = model.body[2]
    x = torch.rand(1, 3, 16, 16)
    model(x).square().mean().backward()
    g = attention.to_out.parametrizations.weight.original0
    assert torch.all(g == 0) and g.grad.abs().sum() > 0


def test_folded_weights_give_the_same_output():
    model = tiny_model().eval()
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        before = model(x)
        after = fold_weight_norm(model)(x)
    assert torch.allclose(before, after, atol=1e-5)
    assert not any(hasattr(m, "parametrizations") for m in model.modules())


def test_checkpoint_alone_rebuilds_the_network(tmp_path):
    model = tiny_model(scale=3, blocks=3, nonlocal_after=(0,))
    save_checkpoint(tmp_path / "m.pt", model_payload(model, {"steps": 5}))
    ckpt = load_checkpoint(tmp_path / "m.pt")
    rebuilt = model_from_checkpoint(ckpt)
    assert rebuilt.config == model.config and ckpt["meta"] == {"steps": 5}
    x = torch.rand(1, 3, 10, 10)
    assert torch.equal(rebuilt(x), model(x))


@pytest.mark.parametrize("bad", [dict(scale=5), dict(task="deblur"), dict(task="denoise", scale=2),
                                 dict(blocks=2, nonlocal_after=(4,))])
def test_config_rejects_impossible_networks(bad):
    with pytest.raises(ValueError):
        ModelConfig(**bad)


def test_config_round_trips_through_a_dict():
    cfg = tiny_config(nonlocal_after=(1, 0), nonlocal_heads=2)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ModelConfig.from_dict({**cfg.to_dict(), "colour": 1})


def test_blind_denoiser_estimates_the_level_only_where_none_is_given():
    model = tiny_model(task="denoise", scale=1, blind=True).eval()
    x = torch.rand(2, 3, 12, 16)
    level = model.estimate_level(x)
    assert level.shape == (2, 1, 12, 16) and (level > 0).all()
    blind = model(x)
    assert torch.allclose(blind, model(x, level), atol=1e-6)
    mixed = model(x, torch.tensor([0.2, float("nan")]))
    assert torch.allclose(mixed[0], model(x, 0.2)[0], atol=1e-6)
    assert torch.allclose(mixed[1], blind[1], atol=1e-6)
    out, returned = model(x, 0.2, return_level=True)
    assert torch.equal(returned, level) and torch.allclose(out, model(x, 0.2))
    with pytest.raises(ValueError, match="needs the noise level"):
        tiny_model(task="denoise", scale=1)(x)
    with pytest.raises(ValueError, match="only a denoiser"):
        tiny_config(blind=True)


def test_blind_inference_goes_through_padding_tiles_and_ensemble():
    from srnl.infer import InferenceOptions, restore_image

    from srnl.metrics import psnr

    # Convolutional only: attention's context is per tile by design.
    model = tiny_model(task="denoise", scale=1, blind=True, nonlocal_after=()).eval()
    rgb = torch.rand(137, 145, 3).numpy()
    whole = restore_image(model, rgb, None, InferenceOptions(tile=0))
    assert whole.shape == rgb.shape and not torch.isnan(torch.from_numpy(whole)).any()
    tiled = restore_image(model, rgb, None, InferenceOptions(tile=64, overlap=32))
    # The NaN that asks for an estimate must never leak into an output pixel: each tile (and
    # its padding) estimates its own level.
    assert tiled.shape == rgb.shape and np.isfinite(tiled).all()
    given = restore_image(model, rgb, 0.1, InferenceOptions(tile=64, overlap=32))
    assert psnr(given, restore_image(model, rgb, 0.1, InferenceOptions(tile=0)), 1.0) > 40
    assert restore_image(model, rgb, None, InferenceOptions(self_ensemble=True)).shape == rgb.shape
    with pytest.raises(ValueError, match="not blind"):
        restore_image(tiny_model(task="denoise", scale=1), rgb, None)


def test_branches_fold_exactly_into_one_conv():
    from srnl.models.rep import RepConv3x3

    torch.manual_seed(0)
    rep = RepConv3x3(6)
    trained_like(rep)
    x = torch.rand(2, 6, 11, 9)
    with torch.no_grad():
        assert torch.allclose(rep.fold()(x), rep(x), atol=1e-5)


def test_a_branched_network_runs_as_a_plain_one_with_the_same_outputs():
    from srnl.models.network import inference_form

    for task, scale in (("sr", 2), ("denoise", 1)):
        model = tiny_model(task=task, scale=scale, rep_branches=True).eval()
        x = torch.rand(1, 3, 16, 12)
        plain = inference_form(tiny_model(task=task, scale=scale, rep_branches=True))
        with torch.no_grad():
            before = model(x) if task == "sr" else model(x, 0.1)
            after = plain(x) if task == "sr" else plain(x, 0.1)
        assert torch.allclose(before, after, atol=1e-5)
        assert sum(p.numel() for p in plain.parameters()) == sum(
            p.numel() for p in inference_form(tiny_model(task=task, scale=scale)).parameters())
