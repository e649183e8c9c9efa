"""srnl's networks exported to ONNX give PyTorch's output under onnxruntime, at any size."""
import numpy as np
import pytest
import torch
from PIL import Image

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from srnl.infer import InferenceOptions, restore  # noqa: E402
from srnl.models.registry import load_model  # noqa: E402

SAMPLE = __import__("pathlib").Path(__file__).parent.parent / "data" / "astronaut.png"


def crop(h: int, w: int) -> np.ndarray:
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"), np.float32)[100:100 + h, 120:120 + w] / 255


@pytest.mark.parametrize("kind", ["sr", "blind denoiser"])
def test_an_exported_model_matches_pytorch_at_odd_and_even_sizes(tmp_path, srnl, model_file,
                                                                 kind):
    path = model_file() if kind == "sr" else model_file(task="denoise", scale=1, blind=True)
    code, out, err = srnl("export", path, "-o", tmp_path / "m.onnx")
    assert code == 0 and "ONNX" in out, err
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    net = load_model(path)
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert meta["scale"] == str(net.config.scale) and "[0, 1]" in meta["input image"]
    for h, w in ((37, 45), (64, 64), (51, 30)):
        x = torch.from_numpy(crop(h, w)).permute(2, 0, 1)[None].contiguous()
        feeds = {"image": x.numpy()}
        if kind != "sr":
            levels = [np.nan, 25 / 255]  # the model's own estimate, and a level given
        else:
            levels = [None]
        for level in levels:
            if level is not None:
                feeds["noise_level"] = np.full((1, 1, h, w), level, np.float32)
                inputs = torch.cat([x, torch.from_numpy(feeds["noise_level"])], 1)
            else:
                inputs = x
            expected = restore(net, inputs, InferenceOptions(tile=0)).numpy()
            got = session.run(None, feeds)[0]
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() <= 1e-4


def test_onnx_is_chosen_by_the_extension_and_a_bad_format_refused(tmp_path, srnl, model_file):
    path = model_file()
    code, _, err = srnl("export", path, "-o", tmp_path / "m.bin", "--format", "tflite")
    assert code == 2 and "--format" in err
    assert srnl("export", path, "-o", tmp_path / "m.onnx")[0] == 0
    assert (tmp_path / "m.onnx").read_bytes()[:2] != b"PK"  # not a torch zip file
