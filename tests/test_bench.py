import pytest
import torch
import torch.nn.functional as F

from srnl.bench import dense_nonlocal, measure_peaks, median_seconds
from srnl.models.attention import _from_tokens, _to_tokens


def test_dense_baseline_computes_the_same_attention_as_the_fused_path():
    torch.manual_seed(0)
    theta, phi, g = (torch.nn.Conv2d(8, 4, 1) for _ in range(3))
    x = torch.randn(1, 8, 6, 7)
    with torch.no_grad():
        dense = dense_nonlocal(x, theta, phi, g)
        fused = F.scaled_dot_product_attention(_to_tokens(theta(x), 1), _to_tokens(phi(x), 1),
                                               _to_tokens(g(x), 1))
    assert torch.allclose(dense, _from_tokens(fused, 6, 7), atol=1e-5)


def test_memory_pass_sees_the_dense_map_and_not_srnl_attention():
    """Measured in a fresh process: the dense block at 64x64 holds its 64 MB map (and the
    softmax's copy); srnl's pooled block on the same features stays small."""
    dense, ours = measure_peaks([("attention", "dense non-local (seed)", 64, 32),
                                 ("attention", "srnl non-local (down 4, pool 2)", 64, 32)])
    if dense is None:
        pytest.skip("no /proc/self/clear_refs: peak memory is not readable here")
    assert dense > 64 * 2**20 and ours < 16 * 2**20


def test_median_seconds_runs_warmup_and_repeats_and_takes_the_median():
    import time

    pauses = iter([0.2, 0.2, 0.0, 0.05, 0.0])  # two warm-up calls, then three timed ones
    seconds = median_seconds(lambda: time.sleep(next(pauses)), repeats=3, warmup=2)
    assert 0.0 < seconds < 0.15  # the median of (0, 0.05, 0): the warm-ups are not timed


def test_a_model_file_is_timed_beside_the_shipped_ones(model_file):
    from srnl.bench import bench_models
    from srnl.models.registry import PRETRAINED

    extra = str(model_file())
    rows = bench_models({"sr": [(16, 20)], "denoise": [(16, 16)]}, repeats=1, ceiling=1.0,
                        extra=(extra,))
    assert [r["what"] for r in rows] == [f"model {n}" for n in [*PRETRAINED, extra]]
    assert rows[-1]["size"] == "20x16" and rows[-1]["seconds"] > 0


def test_a_whole_command_is_measured_in_its_own_process(tmp_path):
    from srnl.bench import command_peak

    seconds, peak = command_peak(["--version"])
    assert seconds > 0 and 10 * 2**20 < peak < 2**30  # an interpreter, and no torch
    with pytest.raises(RuntimeError, match="no such file"):
        command_peak(["upscale", str(tmp_path / "missing.png")])
