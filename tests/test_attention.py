import subprocess
import sys
import textwrap

import torch

from srnl.models.attention import NonLocalAttention, _from_tokens, _to_tokens


def test_identity_at_init():
    torch.manual_seed(0)
    block = NonLocalAttention(16, dim=8, heads=2, down=2, pool=2)
    x = torch.randn(2, 16, 20, 18)
    assert torch.equal(block(x), x)


def test_tokens_keep_channels_apart_from_positions():
    x = torch.arange(2 * 6 * 3 * 4, dtype=torch.float32).reshape(2, 6, 3, 4)
    t = _to_tokens(x, heads=2)
    assert t.shape == (2, 2, 12, 3) and t.is_contiguous()
    # token n of head h holds the 3 channels of that head at position n
    assert torch.equal(t[1, 1, 5], x[1, 3:6].reshape(3, 12)[:, 5])
    assert torch.equal(_from_tokens(t, 3, 4), x)


def test_softmax_runs_over_keys():
    """The fused attention equals an explicit softmax over the key axis; rows sum to 1."""
    torch.manual_seed(0)
    q, k = torch.randn(1, 2, 30, 8), torch.randn(1, 2, 12, 8)
    weights = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
    v = torch.randn(1, 2, 12, 8)
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(fused, weights @ v, atol=1e-5)
    ones = torch.ones(1, 2, 12, 8)
    assert torch.allclose(torch.nn.functional.scaled_dot_product_attention(q, k, ones),
                          torch.ones(1, 2, 30, 8), atol=1e-5)
    # and the module really attends: with a non-zero output it differs from the identity
    block = NonLocalAttention(8, dim=4, down=1, pool=1)
    with torch.no_grad():
        block.to_out.parametrizations.weight.original0.fill_(1.0)
    x = torch.randn(1, 8, 6, 6)
    assert not torch.allclose(block(x), x)


def test_output_is_blended_over_all_keys():
    """Every query's output is a convex combination of the values, whatever the query."""
    block = NonLocalAttention(4, dim=4, down=1, pool=1)
    with torch.no_grad():
        for conv in (block.to_q, block.to_k):
            conv.parametrizations.weight.original1.normal_()
    x = torch.randn(1, 4, 5, 5)
    q = _to_tokens(block.to_q(x), 1)
    k = _to_tokens(block.to_k(x), 1)
    v = _to_tokens(block.to_v(x), 1)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert (out.max(dim=2).values <= v.max(dim=2).values + 1e-5).all()
    assert (out.min(dim=2).values >= v.min(dim=2).values - 1e-5).all()


def test_attention_memory_is_linear_not_quadratic():
    """36864 queries x 9216 keys: the similarity map alone would be 1.36 GB; the module must stay
    far below that (measured as the peak RSS of a fresh process)."""
    code = textwrap.dedent("""
        import resource, torch
        from srnl.models.attention import NonLocalAttention
        torch.manual_seed(0)
        block = NonLocalAttention(16, dim=16, down=1, pool=2).eval()
        with torch.no_grad():
            block.to_out.parametrizations.weight.original0.fill_(1.0)
        x = torch.randn(1, 16, 192, 192)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with torch.inference_mode():
            y = block(x)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((peak - base) * 1024)
    """)
    grown = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True).stdout.strip())
    dense = 192 * 192 * 96 * 96 * 4
    assert grown < dense / 8, f"attention grew RSS by {grown / 1e6:.0f} MB (dense map: {dense / 1e6:.0f} MB)"
