import io
import math

import numpy as np
import pytest
import torch
from PIL import Image, JpegImagePlugin

from conftest import smooth_image
from srnl.degrade import (Degradation, apply_plan, bicubic_downscale, degrade, draw_plan,
                          load_preset, named_plan)
from srnl.degrade.chain import (Blur, CameraNoise, GaussianNoise, Jpeg, PoissonNoise, Resize,
                                YCBCR_TO_RGB, blur_kernel)
from srnl.errors import SrnlError
from srnl.train.config import TrainConfig, load_toml, to_toml
from srnl.train.data import ImageSet, PatchBatches

# IJG's luminance table (JPEG Annex K) and its quality scaling, which Pillow's libjpeg applies.
LUMA_DC = 16


def ijg_entry(base: int, quality: int) -> int:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return min(255, max(1, math.floor((base * scale + 50) / 100)))


def flat(value, h=128, w=128):
    return np.full((h, w, 3), value, np.uint8)


def test_bicubic_preset_is_exactly_the_benchmark_protocol():
    hr = smooth_image(64, 96, seed=3)
    for seed in range(5):
        lr = degrade(hr, 2, load_preset("bicubic"), np.random.default_rng(seed))
        assert np.array_equal(lr, bicubic_downscale(hr, 2))
    assert load_preset("bicubic").is_bicubic and not load_preset("photo").is_bicubic


@pytest.mark.parametrize("quality", [30, 62, 95])
def test_jpeg_stage_writes_a_4_2_0_file_of_its_quality(quality):
    img = smooth_image(48, 64, seed=1)
    data = Jpeg(quality).encode(img)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0
        assert im.quantization[0][0] == ijg_entry(LUMA_DC, quality)
        decoded = np.asarray(im)
    assert np.array_equal(Jpeg(quality)(img), decoded)
    assert not np.array_equal(decoded, img)


def test_drawn_jpeg_quality_stays_in_its_range_and_lower_quality_loses_more():
    d = Degradation(name="t", jpeg_prob=1.0, jpeg_quality=(40, 60))
    qualities = [s.quality for seed in range(40)
                 for s in draw_plan(d, (64, 64), 2, np.random.default_rng(seed))
                 if isinstance(s, Jpeg)]
    assert len(qualities) == 40 and min(qualities) >= 40 and max(qualities) <= 60
    assert len(set(qualities)) > 5
    img = smooth_image(64, 64, seed=2, noise=0.05).astype(np.float64)
    err = [np.abs(Jpeg(q)(img.astype(np.uint8)) - img).mean() for q in (20, 50, 90)]
    assert err[0] > err[1] > err[2]


def test_gaussian_noise_has_its_std_and_grey_noise_is_the_same_on_every_channel():
    out = GaussianNoise(10.0, grey=False, seed=1)(flat(128)).astype(np.float64) - 128
    assert out.std() == pytest.approx(10.0, rel=0.03)
    assert abs(np.corrcoef(out[..., 0].ravel(), out[..., 1].ravel())[0, 1]) < 0.05
    grey = GaussianNoise(10.0, grey=True, seed=1)(flat(128)).astype(np.float64) - 128
    assert np.array_equal(grey[..., 0], grey[..., 2]) and grey.std() == pytest.approx(10, rel=0.03)


def test_noise_is_clipped_and_rounded_to_8_bits_as_a_file_holds_it():
    out = GaussianNoise(20.0, grey=False, seed=0)(flat(250))
    assert out.dtype == np.uint8 and out.max() == 255
    # Clipping removes the upper tail, so a bright image gets darker on average.
    assert out.astype(np.float64).mean() < 248


def test_poisson_noise_variance_grows_with_the_signal():
    peak = 1000.0
    for level in (40, 200):
        out = PoissonNoise(peak, seed=3)(flat(level, 200, 200)).astype(np.float64)
        # Photon counts n ~ Poisson(peak * I / 255) shown as n / peak * 255: var = I * 255 / peak.
        assert out.var() == pytest.approx(level * 255 / peak, rel=0.1)
        assert out.mean() == pytest.approx(level, abs=0.3)


def test_camera_noise_is_correlated_chroma_heavy_and_has_its_luma_std():
    out = CameraNoise(sigma=4.0, chroma=2.0, width=1.0, seed=5)(flat(128, 256, 256))
    noise = out.astype(np.float64) - 128
    ycc = noise @ np.linalg.inv(YCBCR_TO_RGB).T
    assert ycc[..., 0].std() == pytest.approx(4.0, rel=0.1)
    assert ycc[..., 1].std() / ycc[..., 0].std() == pytest.approx(2.0, rel=0.1)
    neighbours = np.corrcoef(ycc[:, :-1, 0].ravel(), ycc[:, 1:, 0].ravel())[0, 1]
    white = GaussianNoise(4.0, False, 5)(flat(128, 256, 256)).astype(np.float64)[..., 0]
    assert neighbours > 0.4
    assert abs(np.corrcoef(white[:, :-1].ravel(), white[:, 1:].ravel())[0, 1]) < 0.05


def test_blur_kernels_are_normalised_with_the_asked_width_and_orientation():
    def moments(k):
        r = k.shape[0] // 2
        y, x = np.mgrid[-r:r + 1, -r:r + 1]
        return (k * x**2).sum(), (k * y**2).sum()

    k = blur_kernel(1.5, 1.5)
    assert k.sum() == pytest.approx(1.0) and moments(k)[0] == pytest.approx(1.5**2, rel=0.02)
    aniso = blur_kernel(2.0, 0.5, theta=0.0)
    assert moments(aniso)[0] > 10 * moments(aniso)[1]
    turned = blur_kernel(2.0, 0.5, theta=math.pi / 2)
    assert np.allclose(turned, aniso.T, atol=1e-12)
    for beta, plateau in ((0.5, False), (3.0, False), (1.0, True)):
        assert blur_kernel(1.0, 1.0, beta=beta, plateau=plateau).sum() == pytest.approx(1.0)
    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[:, ::2] = 255
    assert Blur(blur_kernel(1.0, 1.0))(stripes).std() < 0.1 * stripes.std()


def test_every_plan_ends_at_the_lr_size_in_8_bits_and_repeats_for_its_seed():
    d = load_preset("photo")
    hr = smooth_image(96, 120, seed=4)
    kinds = set()
    for seed in range(30):
        plan = draw_plan(d, (120, 96), 4, np.random.default_rng(seed))
        kinds |= {type(s).__name__ for s in plan}
        lr = apply_plan(plan, hr)
        assert lr.shape == (24, 30, 3) and lr.dtype == np.uint8
        assert np.array_equal(lr, degrade(hr, 4, d, np.random.default_rng(seed)))
    assert kinds == {"Blur", "Resize", "GaussianNoise", "PoissonNoise", "CameraNoise", "Jpeg"}
    resizes = [s for seed in range(30) for s in draw_plan(d, (120, 96), 4,
                                                          np.random.default_rng(seed))
               if isinstance(s, Resize)]
    assert {s.method for s in resizes} == {"bicubic", "bilinear", "area", "lanczos"}
    assert any(s.size != (30, 24) for s in resizes)  # scale jitter's intermediate size


def test_named_plans_for_evaluation():
    plan = named_plan("blur0.5+noise5+jpeg75", (64, 48), 2, seed=1)
    assert [type(s) for s in plan] == [Blur, Resize, GaussianNoise, Jpeg]
    assert plan[1] == Resize((32, 24)) and plan[2].sigma == 5 and plan[3].quality == 75
    assert named_plan("bicubic", (64, 48), 2, seed=1) == [Resize((32, 24))]
    assert named_plan("photo", (64, 48), 2, 7) == draw_plan(load_preset("photo"), (64, 48), 2,
                                                           np.random.default_rng(7))
    for bad in ("jpeg", "foo", "jpeg300", "noise-3"):
        with pytest.raises(SrnlError):
            named_plan(bad, (64, 48), 2, seed=1)


def test_presets_validate_and_recipes_override_them(tmp_path):
    with pytest.raises(SrnlError, match="jpeg_prob"):
        Degradation(jpeg_prob=1.5)
    with pytest.raises(SrnlError, match="resize"):
        Degradation(resize=("cubic",))
    with pytest.raises(SrnlError, match="unknown degradation options"):
        Degradation.from_dict({"preset": "photo", "jpg_prob": 0.1})
    with pytest.raises(SrnlError, match="no degradation preset"):
        load_preset("nope")
    cfg = TrainConfig().updated({"degradation": {"preset": "photo", "jpeg_prob": 0.5}})
    assert cfg.degradation.jpeg_prob == 0.5
    assert cfg.degradation.noise_prob == load_preset("photo").noise_prob
    (tmp_path / "c.toml").write_text(to_toml(cfg.to_dict()))
    assert TrainConfig.from_dict(load_toml(str(tmp_path / "c.toml"))) == cfg


def test_degraded_training_batches_depend_only_on_seed_rank_and_step():
    hr = [smooth_image(80, 80, seed=i) for i in range(3)]
    images = ImageSet(hr, [], ["a", "b", "c"], [])
    batches = PatchBatches(images, "sr", 2, 16, 8, seed=3, degradation=load_preset("photo"),
                           by_area=True)
    first, again = batches[5], batches[5]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert first[0].shape == (8, 3, 16, 16) and first[1].shape == (8, 3, 32, 32)
    assert not torch.equal(first[0], batches[6][0])
    # Inputs are 8-bit images, as every file is.
    assert torch.equal(first[0] * 255, (first[0] * 255).round())


def test_camera_pipeline_noise_is_signal_dependent_correlated_and_leaves_the_image():
    from srnl.degrade.camera import CameraPipeline, demosaic, bayer_masks

    ramp = np.repeat(np.linspace(20, 235, 256)[None, :, None], 256, 0).repeat(3, 2)
    img = ramp.astype(np.uint8)
    cam = CameraPipeline(shot=3e-3, read=1e-6, red_gain=2.0, blue_gain=1.7, detail=0.0, seed=1)
    noise = cam(img).astype(np.float64) - img
    assert abs(noise.mean()) < 0.5
    # Shot noise grows with the signal in linear light (gamma then flattens it in sRGB).
    linear = lambda a: (a.astype(np.float64) / 255) ** 2.2
    lin_noise = linear(cam(img)) - linear(img)
    assert lin_noise[:, 200:240].std() > 3 * lin_noise[:, 20:60].std()
    g = noise[..., 1]
    assert np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1] > 0.3  # demosaicing spreads it
    assert np.array_equal(cam(img), cam(img))
    silent = CameraPipeline(shot=0.0, read=0.0, red_gain=2.0, blue_gain=1.7, detail=0.5, seed=1)
    assert np.abs(silent(img).astype(int) - img).max() <= 1  # no noise: the image is untouched
    flat_raw = np.full((8, 8), 0.25, np.float32)
    assert np.allclose(demosaic(flat_raw), 0.25, atol=1e-6)
    assert bayer_masks(4, 4).sum(0).min() == 1


def test_known_sigma_names_the_level_only_where_the_damage_has_one():
    from srnl.degrade import known_sigma

    assert known_sigma([Resize((8, 8))]) == 0.0
    assert known_sigma([Resize((8, 8)), GaussianNoise(12.0, False, 0)]) == 12.0
    assert known_sigma([GaussianNoise(12.0, True, 0)]) is None
    assert known_sigma([GaussianNoise(12.0, False, 0), Jpeg(80)]) is None
    assert known_sigma([Jpeg(40)]) is None


def test_blind_denoising_batches_give_a_level_where_one_exists_and_nan_elsewhere():
    hr = [smooth_image(64, 64, seed=i) for i in range(2)]
    images = ImageSet(hr, [], ["a", "b"], [])
    batches = PatchBatches(images, "denoise", 1, 32, 64, seed=0, degradation=load_preset("real-noise"))
    noisy, clean, sigma = batches[3]
    known = ~torch.isnan(sigma)
    assert 0 < known.sum() < 64
    residual = (noisy - clean)[known].flatten(1).std(1)
    clipped = (noisy[known] == 0).any() | (noisy[known] == 1).any()
    assert torch.allclose(residual, sigma[known], atol=0.012 if not clipped else 0.05)
    assert all(torch.equal(a.nan_to_num(-1), b.nan_to_num(-1)) for a, b in zip(batches[3], batches[3]))


def test_aliased_downscales_take_pixels_without_a_prefilter():
    import torch.nn.functional as F

    from srnl.degrade import named_plan

    img = (np.random.default_rng(0).random((64, 48, 3)) * 255).astype(np.uint8)
    nearest = apply_plan(named_plan("nearest", (48, 64), 4, 0), img)
    assert (nearest == img[::4, ::4]).all()  # every 4th pixel from the first
    linear = apply_plan(named_plan("bilinear-aliased", (48, 64), 4, 0), img)
    torch_default = F.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float(),
                                  size=(16, 12), mode="bilinear", align_corners=False)
    assert (linear == np.clip(np.rint(torch_default[0].permute(1, 2, 0).numpy()), 0, 255)).all()
    pillow = np.asarray(Image.fromarray(img).resize((12, 16), Image.NEAREST))
    assert (apply_plan(named_plan("nearest-centre", (48, 64), 4, 0), img) == pillow).all()
    # In training the phase is drawn: the chain's nearest picks other pixels too.
    d = Degradation(resize=("nearest",))
    picks = {apply_plan(draw_plan(d, (48, 64), 4, np.random.default_rng(s)), img).tobytes()
             for s in range(8)}
    assert len(picks) > 1


def test_aliased_draws_take_the_tools_phase_as_often_as_asked():
    img = (np.random.default_rng(0).random((64, 48, 3)) * 255).astype(np.uint8)

    def share_at_first_pixel(tool_phase_prob):
        d = Degradation(resize=("nearest",), tool_phase_prob=tool_phase_prob)
        lrs = [apply_plan(draw_plan(d, (48, 64), 4, np.random.default_rng(s)), img)
               for s in range(200)]
        return np.mean([(lr == img[::4, ::4]).all() for lr in lrs])

    # At random phases 1 draw in 16 lands on the first pixel of both axes.
    assert share_at_first_pixel(0.0) < 0.15
    assert 0.6 < share_at_first_pixel(0.7) < 0.85
    assert share_at_first_pixel(1.0) == 1.0
