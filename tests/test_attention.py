import subprocess
import sys
import textwrap

import pytest
import torch

from srnl.models.attention import NonLocalAttention, _from_tokens, _to_tokens


def test_identity_at_init():
    torch.manual_seed(0)
    for cross_scale, patch in ((False, 1), (True, 1), (False, 3)):
        block = NonLocalAttention(16, dim=8, heads=2, down=2, pool=2, cross_scale=cross_scale,
                                  patch=patch)
        x = torch.randn(2, 16, 20, 18)
        assert torch.equal(block(x), x)


def test_tokens_keep_channels_apart_from_positions():
    x = torch.arange(2 * 6 * 3 * 4, dtype=torch.float32).reshape(2, 6, 3, 4)
    t = _to_tokens(x, heads=2)
    assert t.shape == (2, 2, 12, 3) and t.is_contiguous()
    # token n of head h holds the 3 channels of that head at position n
    assert torch.equal(t[1, 1, 5], x[1, 3:6].reshape(3, 12)[:, 5])
    assert torch.equal(_from_tokens(t, 3, 4), x)


def _random_block(features=8, dim=4, heads=2, pool=1, cross_scale=False, patch=1):
    torch.manual_seed(0)
    block = NonLocalAttention(features, dim=dim, heads=heads, down=1, pool=pool,
                              cross_scale=cross_scale, patch=patch)
    with torch.no_grad():
        for conv in (block.to_q, block.to_k, block.to_v, block.to_out):
            conv.parametrizations.weight.original0.uniform_(0.5, 1.5)
            conv.parametrizations.weight.original1.normal_()
    return block


@pytest.mark.parametrize("patch", [1, 3])
def test_the_module_is_softmax_over_keys_of_scaled_dot_products(patch):
    """The block's output, rebuilt by hand from its own embeddings: per head, softmax over the
    key axis of q.k / sqrt(dim), times v, projected and added to the input."""
    block, x = _random_block(patch=patch), torch.randn(2, 8, 5, 6)
    with torch.no_grad():
        q, k, v = (_to_tokens(conv(x), 2) for conv in (block.to_q, block.to_k, block.to_v))
        weights = torch.softmax(q @ k.transpose(-1, -2) / 4**0.5, dim=-1)
        expected = x + block.to_out(_from_tokens(weights @ v, 5, 6))
        assert torch.allclose(block(x), expected, atol=1e-5)
        # softmax over queries instead (RNAN's bug) would give another output
        wrong = torch.softmax(q @ k.transpose(-1, -2) / 4**0.5, dim=-2)
        assert not torch.allclose(block(x), x + block.to_out(_from_tokens(wrong @ v, 5, 6)),
                                  atol=1e-3)


def test_cross_scale_values_are_the_keys_blocks_at_query_resolution():
    """A key pools a 2x2 block of positions; its value is that block itself (4 cells of 2
    channels), and each query's output is written back as a 2x2 block, twice as fine."""
    block, x = _random_block(dim=8, heads=1, pool=2, cross_scale=True), torch.randn(1, 8, 4, 6)
    with torch.no_grad():
        q = _to_tokens(block.to_q(x), 1)
        k = _to_tokens(block.to_k(torch.nn.functional.avg_pool2d(x, 2)), 1)
        cells = block.to_v(x)  # (1, 2, 4, 6)
        v = torch.stack([cells[0, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].reshape(8)
                         for i in range(2) for j in range(3)])[None, None]
        out = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1) @ v  # (1, 1, 24, 8)
        fine = out[0, 0].reshape(4, 6, 2, 2, 2).permute(2, 0, 3, 1, 4).reshape(1, 2, 8, 12)
        expected = x + block.to_out(torch.nn.functional.interpolate(
            fine, size=(4, 6), mode="bilinear", align_corners=False))
        assert torch.allclose(block(x), expected, atol=1e-5)


def test_patch_embeddings_see_a_neighbourhood():
    """With 3x3 patches a query's embedding changes when only its neighbour changes; with 1x1
    it does not."""
    x = torch.randn(1, 8, 5, 6)
    moved = x.clone()
    moved[0, :, 2, 3] += 1.0
    for patch, changes in ((1, False), (3, True)):
        block = _random_block(patch=patch)
        with torch.no_grad():
            q, q_moved = block.to_q(x), block.to_q(moved)
        assert not torch.equal(q[..., 2, 3], q_moved[..., 2, 3])
        assert torch.equal(q[..., 2, 2], q_moved[..., 2, 2]) != changes


def test_every_query_gets_a_convex_combination_of_the_values():
    """With the same value at every key, each query's attention output is that value whatever
    the similarities: the weights over keys sum to one."""
    block, x = _random_block(), torch.randn(1, 8, 6, 7)
    with torch.no_grad():
        block.to_v.parametrizations.weight.original0.zero_()  # v = the bias at every key
        out = block(x)
        constant = block.to_v.bias.reshape(1, -1, 1, 1).expand(1, -1, 6, 7)
        assert torch.allclose(out, x + block.to_out(constant), atol=1e-5)


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
