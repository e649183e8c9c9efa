import math

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from conftest import smooth_image
from srnl.datasets import load_rgb
from srnl.metrics import psnr, quantise, rgb_scores, rgb_to_y, shave, sr_scores, ssim


def test_identical_images_have_infinite_psnr_and_unit_ssim():
    img = smooth_image(32, 32)
    assert psnr(img, img) == math.inf
    assert sr_scores(img, img, 2) == (math.inf, 1.0)
    assert rgb_scores(img, img) == (math.inf, 1.0)


@pytest.mark.parametrize("offset", [1, 5, 17])
def test_constant_offset_gives_the_analytic_psnr(offset):
    a = smooth_image(24, 24).astype(np.float64) * 0.5
    assert psnr(a + offset, a) == pytest.approx(10 * math.log10(255**2 / offset**2), abs=1e-12)
    # An RGB offset of d moves Y by d * (65.481 + 128.553 + 24.966) / 255 = d * 219 / 255.
    y_psnr, _ = sr_scores(a + offset, a, 2)
    assert y_psnr == pytest.approx(10 * math.log10(255**2 / (offset * 219 / 255) ** 2), abs=1e-9)


@pytest.mark.parametrize("rgb,y", [
    ((0, 0, 0), 16.0), ((255, 255, 255), 235.0), ((255, 0, 0), 81.481),
    ((0, 255, 0), 144.553), ((0, 0, 255), 40.966),
    ((128, 64, 32), 16 + (65.481 * 128 + 128.553 * 64 + 24.966 * 32) / 255),
])
def test_y_of_known_pixels(rgb, y):
    assert rgb_to_y(np.array([[rgb]], np.uint8))[0, 0] == pytest.approx(y, abs=1e-9)


def test_greyscale_is_its_own_y_and_grey_files_load_as_rgb(tmp_path):
    grey = smooth_image(20, 20, channels=1)
    np.testing.assert_allclose(rgb_to_y(grey), rgb_to_y(np.repeat(grey[..., None], 3, 2)))
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    rgb = load_rgb(tmp_path / "grey.png")
    assert rgb.shape == (20, 20, 3) and (rgb == grey[..., None]).all()


def test_shave_ignores_exactly_the_border():
    hr = smooth_image(40, 40)
    out = hr.copy()
    out[:3], out[:, -3:] = 0, 255
    assert shave(out, 3).shape == (34, 34, 3)
    assert sr_scores(out, hr, 3)[0] == math.inf
    assert sr_scores(out, hr, 2)[0] < 40


def test_ssim_is_scikit_images_matlab_parity_call():
    a, b = smooth_image(48, 40, seed=1), smooth_image(48, 40, seed=2)
    reference = structural_similarity(a.astype(np.float64), b.astype(np.float64),
                                      gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=255, channel_axis=-1)
    assert ssim(a, b) == reference
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    assert sr_scores(a, b, 0)[1] == structural_similarity(
        ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def test_quantise_clamps_and_rounds_like_a_saved_image():
    out = quantise(np.array([-0.2, 0.0, 0.5 / 255, 1.4 / 255, 1.0, 1.3]))
    assert out.dtype == np.uint8 and out.tolist() == [0, 0, 0, 1, 255, 255]
