import numpy as np
import pytest
from PIL import Image

from conftest import smooth_image, tiny_model
from srnl import SrnlError, upscale
from srnl.imageio import picture_from_array
from srnl.sizing import model_scale_for, resize_picture, target_size


def test_a_factor_or_a_side_gives_the_output_size_and_the_model_scale_that_reaches_it():
    assert target_size((400, 300), 1.5) == ((600, 450), 1.5)
    assert target_size((400, 300), width=1000) == ((1000, 750), 2.5)
    assert target_size((400, 300), height=600) == ((800, 600), 2.0)
    assert target_size((400, 300), width=500, height=900) == ((500, 900), 3.0)
    assert target_size((400, 300)) == ((800, 600), 2.0)
    assert [model_scale_for(f) for f in (1.01, 2, 2.5, 3, 3.5, 4)] == [2, 2, 3, 3, 4, 4]
    for bad in (1.0, 0.5, 4.01):
        with pytest.raises(SrnlError) as refused:
            model_scale_for(bad)
        assert refused.value.option == "scale"
    with pytest.raises(SrnlError, match="not both"):
        target_size((400, 300), 2.0, width=900)


def test_the_downscale_keeps_flat_colour_and_alpha():
    rgba = np.dstack([np.full((20, 30, 3), 90, np.uint8), np.full((20, 30), 200, np.uint8)])
    pic = resize_picture(picture_from_array(rgba), (45, 30))
    assert pic.size == (45, 30)
    assert np.allclose(pic.rgb, 90 / 255, atol=1e-4) and np.allclose(pic.alpha, 200 / 255, atol=1e-4)


def test_any_factor_runs_the_next_model_up_then_shrinks(srnl, tmp_path, model_file):
    sr2 = tiny_model(scale=2).eval()
    img = smooth_image(40, 60)
    out = upscale(img, 1.5, sr2)
    assert out.shape == (60, 90, 3)
    assert upscale(img, None, sr2, width=100).shape == (67, 100, 3)
    with pytest.raises(SrnlError, match="x2"):
        upscale(img, 3, sr2)
    Image.fromarray(img).save(tmp_path / "p.png")
    code, out_text, err = srnl("upscale", tmp_path / "p.png", "-m", model_file(), "-s", "1.5",
                               "--json", tmp_path / "s.json")
    assert code == 0, err
    with Image.open(tmp_path / "p_x1.5.png") as im:
        assert im.size == (90, 60)
    code, _, err = srnl("upscale", tmp_path / "p.png", "-m", model_file(), "-s", "5")
    assert code == 2 and "--scale" in err
