import numpy as np
from PIL import Image, ImageDraw, ImageFont

from conftest import smooth_image, tiny_model
from srnl.eval.compare import columns_without_reference, render
from srnl.eval.protocol import Setting
from srnl.eval.restorers import Method


def _drawn(text: str, font) -> np.ndarray:
    im = Image.new("L", (40, 30))
    ImageDraw.Draw(im).text((4, 4), text, font=font, fill=255)
    return np.asarray(im)


def test_panel_text_uses_only_characters_the_font_can_draw():
    """Pillow's default font draws a box for what it lacks (Greek letters, for one)."""
    font = ImageFont.load_default(size=14)
    missing = _drawn("\U0010fffd", font)
    noisy = smooth_image(24, 24).astype(np.float64)
    columns = columns_without_reference(noisy, Method("tiny", tiny_model(task="denoise", scale=1)),
                                        Setting("denoise", 1, 25.0))
    render(columns, (0, 0, 16, 16))
    text = "".join(c.label + c.subtitle for c in columns)
    assert "25" in text
    assert not [ch for ch in set(text) - {" "} if np.array_equal(_drawn(ch, font), missing)]


def test_compare_runs_a_blind_denoiser_on_protocol_noise_and_on_degraded_inputs(srnl, tmp_path):
    from srnl.models.checkpoint import model_payload, save_checkpoint

    model = tmp_path / "blind.pt"
    save_checkpoint(model, model_payload(tiny_model(task="denoise", scale=1, blind=True)))
    Image.fromarray(smooth_image(64, 64)).save(tmp_path / "p.png")
    for extra in ([], ["-d", "jpeg20"], ["--no-reference"]):
        code, out, err = srnl("compare", tmp_path / "p.png", "-m", model, "--overwrite", *extra)
        assert code == 0, err
        assert (tmp_path / "p_compare.png").is_file() and "panel:" in out
