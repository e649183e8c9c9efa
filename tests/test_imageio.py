import io
import json

import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import smooth_image, tiny_model
from srnl import SrnlError, denoise, upscale
from srnl.imageio import picture_from_pil, read_picture, write_picture


@pytest.fixture(scope="module")
def sr_model():
    return tiny_model(scale=2).eval()


@pytest.fixture(scope="module")
def dn_model():
    return tiny_model(task="denoise", scale=1).eval()


def _rgb():
    return Image.fromarray(smooth_image(20, 24))


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "I;16"])
def test_mode_is_kept_and_size_doubles(sr_model, mode):
    if mode == "I;16":
        im = Image.fromarray(smooth_image(20, 24, channels=1).astype(np.uint16) * 257)
    else:
        im = _rgb().convert(mode)
    out = upscale(im, 2, sr_model)
    assert out.mode == mode and out.size == (48, 40)


def test_palette_image_comes_back_as_rgb_or_rgba(sr_model):
    p = _rgb().convert("P")
    assert upscale(p, 2, sr_model).mode == "RGB"
    p.info["transparency"] = 0
    assert upscale(p, 2, sr_model).mode == "RGBA"


def test_alpha_is_resized_bicubic_not_restored(sr_model):
    rgba = _rgb().convert("RGBA")
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, 24, dtype=np.uint8), (20, 1)))
    rgba.putalpha(alpha)
    out = upscale(rgba, 2, sr_model)
    expected = np.asarray(alpha.resize((48, 40), Image.BICUBIC), np.float64)
    assert np.abs(np.asarray(out.getchannel("A"), np.float64) - expected).max() <= 1


def test_greyscale_is_restored_as_greyscale(dn_model):
    grey = Image.fromarray(smooth_image(20, 24, channels=1))
    out = denoise(grey, sigma=10, model=dn_model)
    assert out.mode == "L" and out.size == grey.size


def test_16_bit_keeps_its_precision(dn_model):
    a = (smooth_image(20, 24, channels=1).astype(np.uint16) * 257 + 100)
    out = denoise(a, sigma=5, model=dn_model)
    assert out.dtype == np.uint16 and out.shape == a.shape
    assert len(np.unique(out % 257)) > 10  # values between the 8-bit steps survive


@pytest.mark.parametrize("shape,dtype", [((20, 24, 3), np.uint8), ((20, 24), np.uint8),
                                         ((20, 24, 2), np.uint8),
                                         ((20, 24, 4), np.uint16), ((20, 24, 3), np.uint16)])
def test_numpy_in_numpy_out(sr_model, shape, dtype):
    a = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    out = upscale(a, 2, sr_model)
    assert out.dtype == dtype and out.shape == (40, 48) + shape[2:]


def test_bad_arrays_are_refused(sr_model):
    with pytest.raises(SrnlError):
        upscale(np.zeros((4, 4, 3), np.float32), 2, sr_model)
    with pytest.raises(SrnlError):
        upscale(np.zeros((4, 4, 5), np.uint8), 2, sr_model)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(smooth_image(20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: the upright picture is 20 wide, 30 tall
    im.save(tmp_path / "o.jpg", exif=exif)
    assert read_picture(tmp_path / "o.jpg").size == (20, 30)


def test_icc_profile_is_carried_to_the_output(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    _rgb().save(tmp_path / "in.png", icc_profile=icc)
    pic = read_picture(tmp_path / "in.png")
    for ext in ("png", "jpg", "webp"):
        write_picture(pic, tmp_path / f"out.{ext}")
        with Image.open(tmp_path / f"out.{ext}") as out:
            assert out.info.get("icc_profile") == icc, ext


def test_jpeg_output_drops_alpha_and_16_bit(tmp_path):
    pic = picture_from_pil(_rgb().convert("RGBA"))
    write_picture(pic, tmp_path / "a.jpg", quality=80)
    with Image.open(tmp_path / "a.jpg") as im:
        assert im.mode == "RGB"
    g16 = picture_from_pil(Image.fromarray(np.full((8, 8), 40000, np.uint16)))
    write_picture(g16, tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as im:
        assert np.asarray(im).max() == 40000


def test_jpeg_output_keeps_full_resolution_colour(tmp_path):
    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[:, ::2, 0] = 255  # one-pixel red and blue columns: 4:2:0 would average them to purple
    stripes[:, 1::2, 2] = 255
    write_picture(picture_from_pil(Image.fromarray(stripes)), tmp_path / "s.jpg", quality=95)
    with Image.open(tmp_path / "s.jpg") as im:
        back = np.asarray(im.convert("RGB")).astype(float)
    assert np.abs(back - stripes).mean() < 10


def test_same_input_same_bytes(sr_model):
    im = _rgb()
    a, b = io.BytesIO(), io.BytesIO()
    upscale(im, 2, sr_model).save(a, "PNG")
    upscale(im, 2, sr_model).save(b, "PNG")
    assert a.getvalue() == b.getvalue()


def test_model_task_and_scale_are_checked(sr_model, dn_model):
    with pytest.raises(SrnlError, match="x3"):
        upscale(_rgb(), 3, sr_model)
    with pytest.raises(SrnlError, match="denoise"):
        upscale(_rgb(), 2, dn_model)


def test_sigma_is_estimated_when_not_given(dn_model):
    clean = smooth_image(64, 64, noise=0)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    from srnl.api import noise_level
    from srnl.imageio import picture_from_array
    assert 12 < noise_level(dn_model, picture_from_array(noisy)).mean < 28
    assert denoise(noisy, model=dn_model).shape == noisy.shape


def test_concurrent_calls_give_the_sequential_results(sr_model):
    from concurrent.futures import ThreadPoolExecutor

    images = [smooth_image(100 + i, 90, seed=i) for i in range(6)]
    sequential = [upscale(im, 2, sr_model, tile=64) for im in images]
    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(lambda im: upscale(im, 2, sr_model, tile=64), images))
    assert all(np.array_equal(a, b) for a, b in zip(sequential, concurrent))


def _camera_jpeg(path, orientation=6):
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2021:05:06 07:08:09"  # DateTimeOriginal
    Image.fromarray(smooth_image(20, 30)).save(path, exif=exif, dpi=(300, 300))


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "tif"])
def test_exif_and_dpi_are_carried_with_the_orientation_reset(tmp_path, ext):
    _camera_jpeg(tmp_path / "in.jpg")
    pic = read_picture(tmp_path / "in.jpg")
    write_picture(pic, tmp_path / f"out.{ext}")
    with Image.open(tmp_path / f"out.{ext}") as out:
        exif = out.getexif()
        assert out.size == (20, 30)  # upright already: a viewer must not turn it again
        assert exif[0x010F] == "Canon" and exif[0x0112] == 1
        assert exif.get_ifd(0x8769)[0x9003] == "2021:05:06 07:08:09"
        if ext != "webp":  # WebP has no resolution field
            assert np.allclose(out.info["dpi"], (300, 300), atol=0.01)


def test_exif_of_a_tiff_is_carried_without_its_storage_layout(tmp_path):
    _camera_jpeg(tmp_path / "in.jpg", orientation=1)
    write_picture(read_picture(tmp_path / "in.jpg"), tmp_path / "a.tif")
    pic = read_picture(tmp_path / "a.tif")
    bigger = picture_from_pil(Image.fromarray(smooth_image(40, 60)))
    bigger.exif, bigger.dpi = pic.exif, pic.dpi
    for ext in ("tif", "jpg"):
        write_picture(bigger, tmp_path / f"b.{ext}")
        with Image.open(tmp_path / f"b.{ext}") as out:
            out.load()
            assert out.size == (60, 40) and out.getexif()[0x010F] == "Canon"


def _animated(path, frames=3):
    images = [Image.fromarray(smooth_image(8, 8, seed=i)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:])


@pytest.mark.parametrize("ext", ["gif", "webp", "png", "tif"])
def test_multi_frame_images_are_refused(tmp_path, sr_model, ext):
    _animated(tmp_path / f"a.{ext}")
    with pytest.raises(SrnlError, match="multi-frame images are not supported: 3 frames"):
        read_picture(tmp_path / f"a.{ext}")
    with Image.open(tmp_path / f"a.{ext}") as im, pytest.raises(SrnlError, match="3 frames"):
        upscale(im, 2, sr_model)


@pytest.mark.parametrize("sigma", [-3, -1e9, 256, float("nan"), float("inf")])
def test_denoise_refuses_a_sigma_outside_0_to_255(dn_model, sigma):
    with pytest.raises(SrnlError, match="0 to 255"):
        denoise(smooth_image(16, 16), sigma=sigma, model=dn_model)


def test_a_model_of_one_scale_implies_it_in_the_api():
    x3 = tiny_model(scale=3).eval()
    assert upscale(smooth_image(10, 12), model=x3).shape == (30, 36, 3)


def test_the_api_is_documented():
    import srnl

    for f in (srnl.upscale, srnl.denoise, srnl.load_model):
        assert f.__doc__ and len(f.__doc__) > 200, f.__name__
    assert "0-255" in srnl.denoise.__doc__ and "[0, 1]" in srnl.denoise.__doc__
    assert "[0, 1]" in srnl.load_model.__doc__


def test_a_negative_tile_overlap_is_refused(sr_model):
    with pytest.raises(SrnlError, match="overlap"):
        upscale(smooth_image(20, 24), 2, sr_model, tile=64, tile_overlap=-4)


def test_a_blind_denoiser_needs_no_sigma_for_any_image_mode(srnl, tmp_path):
    from srnl.models.checkpoint import model_payload, save_checkpoint

    blind = tiny_model(task="denoise", scale=1, blind=True).eval()
    grey = smooth_image(30, 34, channels=1)
    deep = (smooth_image(30, 34, channels=1).astype(np.uint16) * 257)
    for image in (smooth_image(30, 34), grey, deep, Image.fromarray(grey, "L")):
        out = denoise(image, model=blind)
        assert type(out) is type(image)
        if isinstance(image, np.ndarray):
            assert out.shape == image.shape and out.dtype == image.dtype
    path = tmp_path / "blind.pt"
    save_checkpoint(path, model_payload(blind))
    Image.fromarray(smooth_image(30, 34)).save(tmp_path / "p.png")
    code, out, _ = srnl("denoise", tmp_path / "p.png", "-m", path, "--json", tmp_path / "s.json")
    note = json.loads((tmp_path / "s.json").read_text())[0]["note"]
    assert code == 0 and note.startswith("sigma ") and note.endswith("(estimated per pixel)")
    code, _, _ = srnl("denoise", tmp_path / "p.png", "-m", path, "--sigma", "7", "--overwrite",
                      "--json", tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text())[0]["note"] == "sigma 7.0 (given)"
