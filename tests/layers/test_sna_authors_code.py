"""MODEL.ATTENTION.TYPE "sna_authors": each way the authors' block differs from the paper's, pinned."""

import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec

from sna_det import add_sna_config
from sna_det.layers import SpectralNormAttention, SpectralNormAttentionAuthorsCode
from sna_det.modeling import build_resnet_attention_backbone


def authors_reference(x: torch.Tensor, start: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """The steps of SNALayer.forward in nets/pkgs/sna.py (SFSAttention 1136b3d), written out, float64,
    with their explicit Gram matrix W_s = WᵀW and a given start vector."""
    b, c, h, w = x.shape
    m = torch.max(x.double(), dim=1, keepdim=True)[0].reshape(b, h * w)
    v = start.double()
    gram = m.T @ m
    for _ in range(steps):
        v = gram @ v
        v = v / torch.norm(v)
    u = m @ v
    a = torch.softmax(u @ v.T, dim=-1).view(b, 1, h, w)
    return x.double() + a.expand_as(x)


def slow_batch(seed=0, b=4, c=3, hw=6):
    """Features whose batch matrix has sigma1 close to sigma2: the power iteration converges slowly."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, hw, hw, generator=g, dtype=torch.float64)


def slow_matrix(b=6, hw=8):
    """(B, 1, hw, hw) features whose batch matrix has singular values 10, 9.5, 5, ...: slow convergence,
    and a map sharp enough that a step more or less shows in the softmax."""
    g = torch.Generator().manual_seed(1)
    u, _ = torch.linalg.qr(torch.randn(b, b, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(hw * hw, b, generator=g, dtype=torch.float64))
    s = torch.tensor([10.0, 9.5] + [5.0 / (i + 1) for i in range(b - 2)], dtype=torch.float64)
    return ((u * s) @ v.T).reshape(b, 1, hw, hw)


def test_matches_the_authors_steps():
    x = slow_batch()
    block = SpectralNormAttentionAuthorsCode(3)
    start = block.start_vector(36, x.device)
    torch.testing.assert_close(block(x), authors_reference(x, start), rtol=1e-9, atol=1e-12)


def test_channel_max_not_mean():
    block = SpectralNormAttentionAuthorsCode()
    x = slow_batch().abs()
    by_max = block.attention_map(x.amax(dim=1, keepdim=True))  # one channel: max = mean = itself
    by_mean = block.attention_map(x.mean(dim=1, keepdim=True))
    torch.testing.assert_close(block.attention_map(x), by_max)
    assert (block.attention_map(x) - by_mean).abs().max() > 1e-3


def test_one_matrix_per_batch():
    block = SpectralNormAttentionAuthorsCode()
    x = slow_batch(b=3).abs()
    alone = block.attention_map(x[:1])
    # one image: M is 1 x N, rank one, so u vᵀ = M and A = softmax of the image's channel max
    torch.testing.assert_close(alone.flatten(), torch.softmax(x[0].amax(0).flatten(), 0))
    # in a batch: the rank-one approximation of the B x N matrix (SVD), so image 0 depends on its batch mates
    together = block.attention_map(x)
    m = x.amax(dim=1).reshape(3, -1)
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    expected = torch.softmax(s[0] * torch.outer(u[:, 0], vh[0]), dim=-1).reshape(3, 1, 6, 6)
    torch.testing.assert_close(together, expected, rtol=1e-6, atol=1e-8)
    assert (together[0] - alone[0]).abs().max() > 1e-3
    swapped = block.attention_map(torch.cat([x[:1], x[2:], x[1:2]]))  # other order, same mates: same map
    torch.testing.assert_close(swapped[0], together[0])


def test_adds_the_weights():
    block = SpectralNormAttentionAuthorsCode()
    x = slow_batch(b=2, c=5)
    added = block(x) - x
    assert torch.allclose(added, added[:, :1].expand_as(added))  # the same A on every channel
    torch.testing.assert_close(added[:, :1], block.attention_map(x))
    torch.testing.assert_close(added[:, 0].sum(dim=(1, 2)), torch.ones(2, dtype=x.dtype))  # softmax over H*W


def test_ten_steps_no_stopping_test():
    x = slow_matrix()
    start = SpectralNormAttentionAuthorsCode().start_vector(64, x.device)
    out = SpectralNormAttentionAuthorsCode()(x)
    torch.testing.assert_close(out, authors_reference(x, start, steps=10), rtol=1e-9, atol=1e-12)
    for steps in (9, 11):
        assert (out - authors_reference(x, start, steps=steps)).abs().max() > 1e-6
    three = SpectralNormAttentionAuthorsCode(power_steps=3)(x)
    torch.testing.assert_close(three, authors_reference(x, start, steps=3), rtol=1e-9, atol=1e-12)


def test_seeded_start_is_reproducible_and_leaves_the_global_rng_alone():
    x = slow_matrix()
    torch.manual_seed(123)
    first = SpectralNormAttentionAuthorsCode(seed=7)(x)
    after = torch.rand(3)
    torch.manual_seed(123)
    second = SpectralNormAttentionAuthorsCode(seed=7)(x)
    assert torch.equal(first, second) and torch.equal(torch.rand(3), after)
    g = torch.Generator().manual_seed(7)
    torch.testing.assert_close(
        SpectralNormAttentionAuthorsCode(seed=7).start_vector(5, x.device), torch.randn(5, 1, generator=g)
    )
    assert (SpectralNormAttentionAuthorsCode(seed=8)(x) - first).abs().max() > 1e-6  # only 10 steps: the start shows


def test_zero_features_and_gradients():
    block = SpectralNormAttentionAuthorsCode()
    out = block(torch.zeros(2, 3, 4, 4))
    torch.testing.assert_close(out, torch.full((2, 3, 4, 4), 1 / 16))
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    block(x).square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert block(torch.zeros(0, 3, 4, 4)).shape == (0, 3, 4, 4)


def test_attention_type_from_config():
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS, cfg.MODEL.ATTENTION.STEM = 18, 64, True
    for attention, block in (("sna", SpectralNormAttention), ("sna_authors", SpectralNormAttentionAuthorsCode)):
        cfg.MODEL.ATTENTION.TYPE = attention
        backbone = build_resnet_attention_backbone(cfg, ShapeSpec(channels=3))
        assert type(backbone.stem.attn) is block
