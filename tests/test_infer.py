import numpy as np
import pytest
import torch

from conftest import tiny_model
from srnl.errors import SrnlError
from srnl.infer import (InferenceOptions, auto_tile, band_bytes, estimate_bytes, padded, restore,
                        self_ensembled, tiled)
from srnl.metrics import psnr

TRANSFORMS = [lambda t: t, lambda t: t.flip(-1), lambda t: t.flip(-2), lambda t: t.flip(-1, -2),
              lambda t: t.transpose(-1, -2), lambda t: t.transpose(-1, -2).flip(-1),
              lambda t: t.transpose(-1, -2).flip(-2), lambda t: t.transpose(-1, -2).flip(-1, -2)]


@pytest.mark.parametrize("scale", [2, 3])
def test_tiled_matches_whole_image(scale):
    """Overlapping tiles blended with smooth weights agree with the whole-image pass (no seams).
    Convolutional model: attention context is per tile by design."""
    model = tiny_model(scale=scale, nonlocal_after=()).eval()
    x = torch.rand(1, 3, 150, 117)
    whole = restore(model, x, InferenceOptions(tile=0))
    parts = restore(model, x, InferenceOptions(tile=64, overlap=32))
    assert parts.shape == whole.shape
    assert psnr(parts.numpy(), whole.numpy(), data_range=1.0) >= 50


def test_tiles_cover_uneven_sizes_and_report_progress():
    calls = []
    fn = tiled(lambda t: t * 2, tile=16, overlap=4, scale=1, on_tile=lambda d, n: calls.append((d, n)))
    x = torch.rand(1, 3, 37, 21)
    assert torch.allclose(fn(x), x * 2, atol=1e-6)
    assert calls[-1][0] == calls[-1][1] == len(calls) > 1


def test_padding_for_the_denoiser_is_cropped_back():
    model = tiny_model(task="denoise", scale=1).eval()
    x = torch.rand(1, 4, 15, 13)
    assert restore(model, x, InferenceOptions(tile=0)).shape == (1, 3, 15, 13)
    seen = []
    fn = padded(lambda t: seen.append(t.shape[-2:]) or t.repeat_interleave(3, -1).repeat_interleave(3, -2),
                multiple=4, scale=3)
    y = fn(x)
    assert seen == [(16, 16)] and y.shape[-2:] == (45, 39)
    # replicate padding: the cropped result only sees the original pixels at the edge
    assert torch.equal(y[..., ::3, ::3], x)


def test_self_ensemble_is_equivariant():
    model = tiny_model().eval()
    x = torch.rand(1, 3, 12, 12)
    ens = self_ensembled(model)
    with torch.inference_mode():
        base = ens(x)
        for t in TRANSFORMS:
            assert torch.allclose(ens(t(x)), t(base), atol=1e-5)
            # a symmetric input gives a symmetric output
        sym = sum(t(x) for t in TRANSFORMS) / 8
        out = ens(sym)
        for t in TRANSFORMS:
            assert torch.allclose(t(out), out, atol=1e-5)
        assert not torch.allclose(model(x), base, atol=1e-4)


def test_restore_is_deterministic():
    model = tiny_model().eval()
    x = torch.rand(1, 3, 133, 101)
    options = InferenceOptions(tile=64, self_ensemble=True)
    a, b = restore(model, x, options), restore(model, x, options)
    assert torch.equal(a, b)


@pytest.mark.parametrize("kw,option", [(dict(tile=16), "tile"), (dict(tile=-1), "tile"),
                                       (dict(tile="big"), "tile"),
                                       (dict(overlap=-4), "tile_overlap"),
                                       (dict(tile=64, overlap=33), "tile_overlap"),
                                       (dict(memory_budget=0), "memory_budget")])
def test_inference_options_are_checked_once(kw, option):
    with pytest.raises(SrnlError) as refused:
        InferenceOptions(**kw)
    assert refused.value.option == option


def test_auto_tile_is_decided_by_the_options():
    model = tiny_model()
    budget = estimate_bytes(model, 100, 100) + band_bytes(model, 100) * 100
    assert InferenceOptions(memory_budget=budget).tile_for(model, 100, 100) == 0
    assert InferenceOptions(memory_budget=budget).tile_for(model, 1000, 1000) == auto_tile(
        model, 1000, 1000, budget)
    assert InferenceOptions(tile=0).tile_for(model, 5000, 5000) == 0
    assert InferenceOptions(tile=96).tile_for(model, 50, 50) == 96


def test_auto_tiles_only_over_the_memory_budget():
    model = tiny_model()
    # What a whole 100 x 100 run holds: its activations and its float output.
    small = estimate_bytes(model, 100, 100) + band_bytes(model, 100) * 100
    assert auto_tile(model, 100, 100, budget=small) == 0
    assert auto_tile(model, 100, 101, budget=small) > 0
    tile = auto_tile(model, 1000, 1000, budget=small)
    # A tile's activations and the rows of output a row of such tiles holds fit the budget.
    assert 64 <= tile <= 100
    assert estimate_bytes(model, tile, tile) + band_bytes(model, 1000) * tile <= small
    assert estimate_bytes(model, tile + 8, tile + 8) + band_bytes(model, 1000) * (tile + 8) > small
    assert estimate_bytes(model, 200, 200) == 4 * estimate_bytes(model, 100, 100)


@pytest.mark.parametrize("length,tile,overlap", [(1080, 650, 32), (1920, 650, 32), (100, 40, 16),
                                                 (41, 40, 16), (40, 40, 16)])
def test_tiles_are_even_cover_everything_and_are_as_few_as_possible(length, tile, overlap):
    from srnl.infer import _spans

    spans = _spans(length, tile, overlap)
    sizes = {size for _, size in spans}
    assert len(sizes) == 1 and max(sizes) <= tile
    assert spans[0][0] == 0 and sum(spans[-1]) == length
    for (a, sa), (b, _) in zip(spans, spans[1:]):
        assert a + sa - b >= overlap  # consecutive tiles overlap enough
    # one tile fewer could not cover the length with that overlap
    n = len(spans)
    assert n == 1 or (n - 1) * tile - (n - 2) * overlap < length


@pytest.mark.parametrize("tile", [0, 64])
@pytest.mark.parametrize("bits", [8, 16])
def test_the_quantised_output_is_the_float_output_rounded_band_by_band(tile, bits):
    from srnl.infer import restore_image

    model = tiny_model()
    rgb = np.random.default_rng(0).random((90, 150, 3)).astype(np.float32)
    options = InferenceOptions(tile=tile, overlap=16)
    exact = restore_image(model, rgb, options=options)
    quantised = restore_image(model, rgb, options=options, bits=bits)
    top = 2**bits - 1
    assert quantised.dtype == (np.uint8 if bits == 8 else np.uint16)
    assert quantised.shape == exact.shape
    assert np.abs(quantised.astype(np.float64) - np.clip(np.rint(exact * top), 0, top)).max() <= 1
