import pytest
import torch
import torch.nn.functional as F

from srnl.bench import dense_nonlocal, exact_memory_accounting, median_seconds, peak_memory
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


def test_peak_memory_sees_a_large_temporary_allocation():
    exact_memory_accounting()
    _, grown = peak_memory(lambda: torch.ones(50 * 2**20 // 4).sum())
    if grown is None:
        pytest.skip("no /proc/self/clear_refs: peak memory is not readable here")
    assert 40 * 2**20 < grown < 200 * 2**20


def test_median_seconds_runs_warmup_and_repeats():
    calls = []
    assert median_seconds(lambda: calls.append(1), repeats=3, warmup=2) >= 0
    assert len(calls) == 5
