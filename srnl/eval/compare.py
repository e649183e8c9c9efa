"""Side-by-side panels: an overview of the image with the crop marked, then the same crop of the
ground truth, the baselines and the model, each labelled with its PSNR/SSIM. The crop goes where
the model gains most over the protocol baseline, unless a box is given."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage.transform import integral_image

from ..atomic import atomic_path, check_writable_file
from ..datasets import Pair, load_rgb
from ..degrade import check_sigma, estimate_noise
from ..errors import SrnlError
from ..infer import InferenceOptions
from ..models.registry import default_model, resolve_model, shared_model
from .protocol import Setting, load_sample, scores
from .report import psnr_text
from .restorers import REFERENCE_BASELINE, Method
from .runner import Job, Record, as_uint8

CELL = 256  # display side of each crop, in panel pixels
GAP = 8
LABEL = 40  # room for two lines of text under each cell
CROP = 96  # default crop side, in output pixels
BACKGROUND, TEXT, MARK = (24, 24, 24), (235, 235, 235), (255, 64, 64)

Box = tuple[int, int, int, int]  # x, y, width, height in output pixels


@dataclass
class Column:
    label: str
    image: np.ndarray  # uint8 (H, W, 3), at output size
    scores: tuple[float, float] | None = None
    note: str = ""  # shown instead of the scores where there are none

    @property
    def subtitle(self) -> str:
        if self.scores is None:
            return self.note
        return f"{psnr_text(self.scores[0])} dB / {self.scores[1]:.4f}"


def panel_size(columns: int) -> tuple[int, int]:
    """(width, height) of a panel of `columns` crops plus the overview."""
    return GAP + (columns + 1) * (CELL + GAP), GAP + CELL + LABEL + GAP


def columns_for(clean: np.ndarray, degraded: np.ndarray, methods: list[Method], setting: Setting,
                options: InferenceOptions = InferenceOptions()) -> list[Column]:
    """Ground truth, the protocol baseline (bicubic / the noisy input), then `methods` in order."""
    baseline = REFERENCE_BASELINE[setting.task]
    columns = [Column("ground truth", clean)]
    for m in [Method(baseline)] + [m for m in methods if m.name != baseline]:
        out = m.run(degraded, setting, options)
        columns.append(Column(m.name, as_uint8(out), scores(out, clean, setting)))
    return columns


def columns_without_reference(degraded: np.ndarray, model: Method, setting: Setting,
                              options: InferenceOptions = InferenceOptions()) -> list[Column]:
    """The input (nearest-neighbour enlarged for SR), bicubic or NLM, and the model."""
    if setting.task == "sr":
        h, w = degraded.shape[:2]
        size = (w * setting.scale, h * setting.scale)
        shown = Column("input", np.asarray(Image.fromarray(degraded).resize(size, Image.NEAREST)),
                       note="nearest neighbour")
        baseline = Method("bicubic")
    else:
        # Pillow's built-in font has no Greek letters: "σ" would be drawn as a box.
        shown = Column("input", as_uint8(degraded), note=f"sigma {setting.sigma:.1f}"
                       if setting.sigma is not None else "level left to each method")
        baseline = Method("nlm")
    return [shown, Column(baseline.name, baseline.run(degraded, setting)),
            Column(model.name, model.run(degraded, setting, options))]


def best_box(gain: np.ndarray, side: int = CROP) -> Box:
    """The side x side window (clipped to the image) with the largest total `gain`."""
    h, w = gain.shape
    bh, bw = min(side, h), min(side, w)
    ii = np.pad(integral_image(gain), ((1, 0), (1, 0)))
    sums = ii[bh:, bw:] - ii[:-bh, bw:] - ii[bh:, :-bw] + ii[:-bh, :-bw]
    y, x = np.unravel_index(np.argmax(sums), sums.shape)
    return int(x), int(y), bw, bh


def error_gain(reference: np.ndarray, baseline: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per-pixel squared error of the baseline minus that of the candidate, summed over colour."""
    ref = reference.astype(np.float64)
    return ((baseline - ref) ** 2 - (candidate - ref) ** 2).sum(axis=-1)


def check_box(box: Box, shape: tuple[int, ...]) -> Box:
    x, y, w, h = box
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > shape[1] or y + h > shape[0]:
        raise SrnlError(f"box {x},{y},{w},{h} does not fit the {shape[1]}x{shape[0]} output")
    return box


def _fit(size: tuple[int, int]) -> tuple[int, int]:
    zoom = CELL / max(size)
    return max(1, round(size[0] * zoom)), max(1, round(size[1] * zoom))


def render(columns: list[Column], box: Box) -> Image.Image:
    """The panel: an overview of the first column with `box` marked, then each column's crop,
    enlarged without smoothing so the pixels stay as the methods made them."""
    font = ImageFont.load_default(size=14)
    panel = Image.new("RGB", panel_size(len(columns)), BACKGROUND)
    draw = ImageDraw.Draw(panel)
    x, y, w, h = box

    def place(img: Image.Image, i: int, title: str, subtitle: str) -> None:
        left = GAP + i * (CELL + GAP)
        panel.paste(img, (left + (CELL - img.width) // 2, GAP + (CELL - img.height) // 2))
        draw.text((left, GAP + CELL + 4), title, fill=TEXT, font=font)
        draw.text((left, GAP + CELL + 22), subtitle, fill=TEXT, font=font)

    whole = Image.fromarray(columns[0].image)
    overview = whole.resize(_fit(whole.size), Image.BICUBIC)
    zoom = overview.width / whole.width
    ImageDraw.Draw(overview).rectangle(
        [x * zoom, y * zoom, (x + w) * zoom - 1, (y + h) * zoom - 1], outline=MARK, width=2)
    place(overview, 0, "overview", f"crop {x},{y} {w}x{h}")
    for i, c in enumerate(columns, 1):
        crop = Image.fromarray(c.image[y:y + h, x:x + w]).resize(_fit((w, h)), Image.NEAREST)
        place(crop, i, c.label, c.subtitle)
    return panel


def write_panel(panel: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        panel.save(tmp, format="PNG")


def _candidate(methods: list[Method]) -> str:
    """The method a panel is about: the last network given, else the last method."""
    nets = [m.name for m in methods if m.net is not None]
    return nets[-1] if nets else methods[-1].name


def _rival(names: list[str], candidate: str, task: str) -> str:
    """What the candidate's gain is measured against to choose the crop: NLM when denoising and
    it was run (against the noisy input every denoiser gains most on flat areas, which shows
    nothing), else the protocol baseline."""
    if task == "denoise" and "nlm" in names and candidate != "nlm":
        return "nlm"
    return REFERENCE_BASELINE[task]


def _showcase(jobs: list[Job], records: list[Record], setting: Setting) -> int:
    """The image on which the candidate gains most over its rival, when the rival was evaluated
    too; else the first image."""
    by_name = {j.method.name: r for j, r in zip(jobs, records)}
    candidate = _candidate([j.method for j in jobs])
    base, best = by_name.get(_rival(list(by_name), candidate, setting.task)), by_name[candidate]
    if base is None or best is base:
        return 0
    gains = np.array([b.psnr - a.psnr for a, b in zip(base.per_image, best.per_image)])
    return int(np.argmax(np.where(np.isfinite(gains), gains, -np.inf)))


def _focus(clean: np.ndarray, columns: list[Column], candidate: str, task: str) -> np.ndarray:
    """The gain map that places the crop: the candidate over its rival or, when the baseline is
    all there is, the baseline's own error, so the crop shows where it fails."""
    by_label = {c.label: c for c in columns[1:]}
    rival, chosen = by_label[_rival(list(by_label), candidate, task)], by_label[candidate]
    return error_gain(clean, rival.image, clean if chosen is rival else chosen.image)


def compare_image(image: Path, model: Method, setting: Setting, *, reference: bool = True,
                  box: Box | None = None,
                  options: InferenceOptions = InferenceOptions()) -> tuple[Image.Image, list[Column], Box]:
    """With `reference`, `image` is clean: degraded here, then restored by the baseline (and NLM
    at the true sigma when denoising) and the model. Without, `image` is the degraded input
    itself; a denoising sigma of None is then estimated from it."""
    if not image.is_file():
        raise SrnlError(f"{image}: no such file")
    if reference:
        clean, degraded = load_sample(Pair(image), setting, 0)
        extra = [Method("nlm")] if setting.task == "denoise" else []
        columns = columns_for(clean, degraded, extra + [model], setting, options)
        gain = _focus(clean, columns, model.name, setting.task)
    else:
        degraded = load_rgb(image)
        if setting.task == "denoise":
            degraded = degraded.astype(np.float64)
            if setting.sigma is None and not (model.net is not None and model.net.config.blind):
                setting = replace(setting, sigma=estimate_noise(degraded))
        columns = columns_without_reference(degraded, model, setting, options)
        # No ground truth: show where the model departs most from the baseline.
        gain = ((columns[2].image.astype(np.float64) - columns[1].image) ** 2).sum(axis=-1)
    box = check_box(box, columns[0].image.shape) if box else best_box(gain)
    return render(columns, box), columns, box


def comparison(model: str | None = None, *, scale: int | None = None, sigma: float | None = None,
               degradation: str | None = None, reference: bool = True,
               device: str = "cpu") -> tuple[Method, Setting]:
    """What `srnl compare` shows: the model (default: the shipped denoiser when a sigma is given
    without a scale, else the shipped upscaler of `scale` or x2) and the setting that degrades
    the image (a denoiser without sigma: Gaussian noise of 25; with a degradation or on a degraded
    input, the denoiser is told no level)."""
    if sigma is not None:
        check_sigma(sigma)
    if model is None:
        model = (default_model("denoise") if sigma is not None and scale is None
                 else default_model("sr", scale or 2))
    net = shared_model(model, device)
    if scale is not None:
        resolve_model(net, "sr", scale, device)  # refuses a denoiser or another scale
    if net.config.task == "sr":
        return Method(model, net, device), Setting("sr", net.config.scale, degradation=degradation)
    if sigma is None and reference and degradation is None:
        sigma = 25.0  # the protocol's noise needs a level; -d makes other inputs, told nothing
    return Method(model, net, device), Setting("denoise", 1, sigma, degradation=degradation)


def panel_path(image: Path, output: Path | None, overwrite: bool) -> Path:
    """Where the panel goes (default IMAGE_compare.png beside the image), refused before any work
    when it is the input itself, or exists and may not be replaced."""
    output = output or image.with_name(f"{image.stem}_compare.png")
    if output.exists() and output.resolve() == image.resolve():
        raise SrnlError(f"{output}: the panel would overwrite its input; refused")
    check_writable_file(output, overwrite)
    return output


def dataset_panels(jobs: list[Job], records: list[Record], folder: Path,
                   options: InferenceOptions = InferenceOptions()) -> list[Path]:
    """One panel per dataset and setting: every evaluated method on a showcase image."""
    groups: dict[tuple[str, Setting], list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault((job.dataset, job.setting), []).append(i)
    written = []
    for (dataset, setting), members in groups.items():
        group = [jobs[i] for i in members]
        methods = [j.method for j in group]
        index = _showcase(group, [records[i] for i in members], setting)
        clean, degraded = load_sample(group[0].pairs[index], setting, index)
        columns = columns_for(clean, degraded, methods, setting, options)
        path = folder / f"{dataset}_{setting.slug}.png"
        gain = _focus(clean, columns, _candidate(methods), setting.task)
        write_panel(render(columns, best_box(gain)), path)
        written.append(path)
    return written
