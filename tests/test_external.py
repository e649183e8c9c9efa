"""Model files of other architectures (through spandrel) run through srnl's own inference layer."""
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import smooth_image

spandrel = pytest.importorskip("spandrel")
from safetensors.torch import save_file  # noqa: E402
from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.DnCNN import DnCNN  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402
from spandrel.architectures.SPAN import SPAN  # noqa: E402
from spandrel.architectures.SwinIR import SwinIR  # noqa: E402

from srnl.models.registry import load_model  # noqa: E402

NETWORKS = {  # small, random weights: no weights can be downloaded here
    "rrdb": (lambda: ESRGAN(num_filters=8, num_blocks=1, scale=4), 4),
    "compact": (lambda: Compact(num_feat=8, num_conv=2, upscale=2), 2),
    "span": (lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2), 2),
    "swinir": (lambda: SwinIR(embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2,
                              upsampler="pixelshuffledirect", img_size=16), 2),
    "dncnn": (lambda: DnCNN(in_nc=3, out_nc=3, nc=8, nb=17), 1),
}


def saved(tmp_path, name, fmt="pth"):
    torch.manual_seed(0)
    net = NETWORKS[name][0]().eval()
    path = tmp_path / f"{name}.{fmt}"
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, path) if fmt == "safetensors" else torch.save(state, path)
    return net, path


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_a_spandrel_model_runs_as_srnl_runs_its_own(tmp_path, srnl, name, fmt):
    net, path = saved(tmp_path, name, fmt)
    scale = NETWORKS[name][1]
    loaded = load_model(path)
    assert loaded.config.scale == scale and loaded.config.task == ("sr" if scale > 1 else "denoise")
    img = smooth_image(40, 48)
    Image.fromarray(img).save(tmp_path / "in.png")
    command = "upscale" if scale > 1 else "denoise"
    code, out, err = srnl(command, tmp_path / "in.png", "-m", path, "-o", tmp_path / "out.png")
    assert code == 0, err
    with Image.open(tmp_path / "out.png") as im:
        result = np.asarray(im)
    assert result.shape == (40 * scale, 48 * scale, 3) and path.name in out
    with torch.no_grad():
        direct = net(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    expected = np.clip(np.rint(direct[0].permute(1, 2, 0).numpy() * 255), 0, 255)
    # The same network on the same pixels: at most the rounding apart.
    assert np.abs(result.astype(float) - expected).max() <= 1
    # Tiles and the self-ensemble go through the same layer.
    code, _, err = srnl(command, tmp_path / "in.png", "-m", path, "-o", tmp_path / "t.png",
                        "--tile", "64", "--tile-overlap", "8", "--self-ensemble")
    assert code == 0, err


def test_a_grey_model_sees_luma_and_answers_in_rgb(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "grey.pth"
    torch.save(DnCNN(in_nc=1, out_nc=1, nc=8, nb=17).state_dict(), path)
    import srnl

    out = srnl.denoise(smooth_image(24, 24), model=str(path))
    assert out.shape == (24, 24, 3) and (out[..., 0] == out[..., 1]).all()


def test_any_model_file_goes_into_the_benchmark_table(tmp_path, srnl):
    _, path = saved(tmp_path, "compact")
    folder = tmp_path / "set"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(32, 32, seed=i)).save(folder / f"{i}.png")
    code, out, err = srnl("eval", "-m", path, "-m", "bicubic", folder, "-s", "2")
    assert code == 0, err
    flat = "".join(c for c in out if c not in "│ \n")  # the table folds long names
    assert "compact.pth" in flat and "bicubic" in flat


def test_models_file_says_what_a_file_is(tmp_path, srnl):
    _, path = saved(tmp_path, "span")
    code, out, _ = srnl("models", "--file", path)
    assert code == 0 and "architecture: SPAN" in out and "scale: 2" in out


def test_a_file_spandrel_does_not_know_or_a_truncated_one_is_one_line(tmp_path, srnl):
    Image.fromarray(smooth_image(16, 16)).save(tmp_path / "in.png")
    unknown = tmp_path / "unknown.pth"
    torch.save({"weight": torch.zeros(3)}, unknown)
    _, good = saved(tmp_path, "compact")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:200])
    for path in (unknown, truncated):
        code, _, err = srnl("upscale", tmp_path / "in.png", "-m", path)
        lines = [l for l in err.splitlines() if l.strip()]
        assert code == 2 and len(lines) == 1 and path.name in lines[0], err


def test_a_pickled_program_is_never_run(tmp_path, srnl):
    class Trap:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('ran')" % str(tmp_path / "ran"),))

    path = tmp_path / "trap.pth"
    torch.save({"x": Trap()}, path)
    Image.fromarray(smooth_image(16, 16)).save(tmp_path / "in.png")
    code, _, _ = srnl("upscale", tmp_path / "in.png", "-m", path)
    assert code == 2 and not (tmp_path / "ran").exists()


def test_a_model_without_a_level_refuses_sigma(tmp_path, srnl):
    _, path = saved(tmp_path, "dncnn")
    Image.fromarray(smooth_image(16, 16)).save(tmp_path / "in.png")
    code, _, err = srnl("denoise", tmp_path / "in.png", "-m", path, "--sigma", "25")
    assert code == 1 and "--sigma" in err


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_tiles_of_a_spandrel_model_are_seamless(tmp_path, name):
    import srnl

    _, path = saved(tmp_path, name)
    img = smooth_image(96, 120)
    run = srnl.upscale if NETWORKS[name][1] > 1 else srnl.denoise
    whole = run(img, model=str(path), tile=0).astype(int)
    tiled = run(img, model=str(path), tile=64, tile_overlap=16).astype(int)
    assert whole.shape == tiled.shape
    # Within one level of 8 bits, but for the thin bands where tiles overlap, and a window's
    # width at the image's edges: a window-attention model (SwinIR) pads a tile that is not a
    # multiple of its window, where the whole image needed no padding.
    from srnl.infer import tile_spans

    scale = NETWORKS[name][1]
    band = np.zeros(whole.shape[:2], bool)
    edge = 4 * scale
    band[:edge], band[-edge:], band[:, :edge], band[:, -edge:] = True, True, True, True
    for axis, spans in enumerate(tile_spans(96, 120, 64, 16)):
        for (a, size), (b, _) in zip(spans, spans[1:]):
            index = [slice(None), slice(None)]
            index[axis] = slice(b * scale, (a + size) * scale)
            band[tuple(index)] = True
    diff = np.abs(whole - tiled).max(axis=2)
    assert (diff[~band] <= 1).all()
