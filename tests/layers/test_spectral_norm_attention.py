"""SpectralNormAttention against torch.linalg.svd and on the edge cases it must survive."""

import pytest
import torch
from torch.nn import functional as F

from sna_det import SpectralNormAttention
from sna_det.layers import dominant_singular_triple, low_rank_approximation, rank_one_approximation
from sna_det.layers import spectral_norm_attention as sna_module


def reference_map(x: torch.Tensor, rank: int = 1) -> torch.Tensor:
    """softmax over H*W of the top-`rank` SVD approximation of x.mean(1), from torch.linalg.svd."""
    m = x.double().mean(1)
    u, s, vh = torch.linalg.svd(m)
    approx = sum(s[:, i, None, None] * u[:, :, i, None] * vh[:, None, i, :] for i in range(rank))
    b, h, w = approx.shape
    return F.softmax(approx.reshape(b, -1), -1).reshape(b, 1, h, w)


def low_rank_plus_noise(b: int, h: int, w: int, rank: int, noise: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, h, rank, generator=g, dtype=torch.float64)
    v = torch.randn(b, rank, w, generator=g, dtype=torch.float64)
    scales = torch.tensor([4.0**-i for i in range(rank)], dtype=torch.float64)
    return (u * scales) @ v + noise * torch.randn(b, h, w, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(
    "m",
    [
        pytest.param(
            torch.randn(5, 12, 17, generator=torch.Generator().manual_seed(0), dtype=torch.float64), id="gaussian"
        ),
        pytest.param(low_rank_plus_noise(4, 20, 9, rank=3, noise=0.05, seed=1), id="low-rank+noise"),
        pytest.param(
            torch.rand(3, 30, 30, generator=torch.Generator().manual_seed(2), dtype=torch.float64), id="non-negative"
        ),
        pytest.param(torch.randn(3, 40, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64), id="tall"),
    ],
)
def test_power_iteration_matches_svd(m):
    # some of these have sigma1/sigma2 near 1.01: 2^12 power steps, beyond the default 2^8
    result = dominant_singular_triple(m, squarings=12)
    u, s, vh = torch.linalg.svd(m)
    torch.testing.assert_close(result.sigma, s[:, 0], rtol=1e-7, atol=1e-9)
    # singular vectors are defined up to sign
    sign = torch.sign((result.v * vh[:, 0]).sum(-1, keepdim=True))
    torch.testing.assert_close(result.v * sign, vh[:, 0], rtol=0, atol=1e-5)
    torch.testing.assert_close(result.u * sign, u[:, :, 0], rtol=0, atol=1e-5)
    rank_one = s[:, 0, None, None] * u[:, :, 0, None] * vh[:, None, 0, :]
    torch.testing.assert_close(low_rank_approximation(m, 1, "power", squarings=12), rank_one, rtol=0, atol=1e-5)


@pytest.mark.parametrize("rank", [2, 3])
def test_rank_k_is_the_sum_of_the_top_k_svd_terms(rank):
    m = low_rank_plus_noise(3, 16, 14, rank=4, noise=0.01, seed=4)
    u, s, vh = torch.linalg.svd(m)
    expected = (u[:, :, :rank] * s[:, None, :rank]) @ vh[:, :rank, :]
    torch.testing.assert_close(low_rank_approximation(m, rank, "power"), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(low_rank_approximation(m, rank, "svd"), expected)


def test_rank_above_matrix_size_is_the_whole_matrix():
    m = torch.randn(2, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(low_rank_approximation(m, 7, "power"), m, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("weighting", ["softmax", "softmax_mean1"])
def test_block_output_matches_svd_reference(rank, weighting):
    x = torch.randn(3, 8, 11, 13, dtype=torch.float64) + torch.linspace(0, 2, 13, dtype=torch.float64)
    block = SpectralNormAttention(rank=rank, weighting=weighting)
    expected_map = reference_map(x, rank) * (11 * 13 if weighting == "softmax_mean1" else 1)
    torch.testing.assert_close(block.attention_map(x), expected_map, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(block(x), x * expected_map, rtol=1e-6, atol=1e-9)
    exact = SpectralNormAttention(rank=rank, mode="svd", weighting=weighting)
    torch.testing.assert_close(exact(x), x * expected_map, rtol=1e-9, atol=1e-12)


def test_applied_map_is_a_softmax_times_a_per_image_constant():
    x = torch.randn(2, 4, 9, 7)
    plain = SpectralNormAttention(weighting="softmax").attention_map(x)
    mean1 = SpectralNormAttention(weighting="softmax_mean1").attention_map(x)
    torch.testing.assert_close(plain.sum((1, 2, 3)), torch.ones(2))
    torch.testing.assert_close(mean1.mean((1, 2, 3)), torch.ones(2))
    torch.testing.assert_close(mean1, plain * 63)


def spectrum(b: int, h: int, w: int, ratio: float, seed: int, dtype=torch.float64) -> torch.Tensor:
    """(b, h, w) matrices with singular values ratio, 1, then 0.9 .. 0.01: sigma1/sigma2 = ratio."""
    g = torch.Generator().manual_seed(seed)
    q1, _ = torch.linalg.qr(torch.randn(b, h, h, generator=g, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(b, w, w, generator=g, dtype=torch.float64))
    n = min(h, w)
    s = torch.cat(
        [torch.tensor([ratio, 1.0], dtype=torch.float64), torch.linspace(0.9, 0.01, n - 2, dtype=torch.float64)]
    )
    return ((q1[:, :, :n] * s) @ q2[:, :, :n].transpose(1, 2)).to(dtype)


@pytest.mark.parametrize("ratio", [1.05, 1.2, 1.5, 4.0])
@pytest.mark.parametrize("shape", [(3, 24, 40), (3, 40, 24)], ids=["wide", "tall"])
def test_rank_one_map_matches_svd_whatever_the_gap(ratio, shape):
    # 2^8 power steps: the error (sigma2/sigma1)^512 is below 1e-10 even at sigma1/sigma2 = 1.05
    m = spectrum(*shape, ratio=ratio, seed=6)
    u, s, vh = torch.linalg.svd(m)
    exact = s[:, 0, None, None] * u[:, :, 0, None] * vh[:, None, 0, :]
    error = (rank_one_approximation(m) - exact).norm(dim=(1, 2)) / exact.norm(dim=(1, 2))
    assert error.max() < 1e-8
    single = rank_one_approximation(m.float()).double()  # float32, as the block computes
    assert ((single - exact).norm(dim=(1, 2)) / exact.norm(dim=(1, 2))).max() < 1e-5


def relative_errors(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image, Frobenius norm of a - b over that of b (0 where both are 0)."""
    return (a.double() - b).norm(dim=(1, 2)) / b.norm(dim=(1, 2)).clamp_min(1e-300)


@pytest.mark.parametrize("scale", [0.0, 1e-20, 1e-10, 1e-3, 1.0, 1e10, 1e20])
def test_features_of_any_scale_give_the_svd_map(scale):
    """float32 features from 1e-20 to 1e20: finite, the applied weights those of the SVD; the
    rank-one map itself exact from 1e-10 up (below, M M^T underflows, but the softmax of so small
    a map is uniform to float32's precision whatever its rank-one map)."""
    m = spectrum(2, 24, 40, ratio=1.05, seed=8)
    noise = torch.randn(2, 3, 24, 40, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    x = (m[:, None] + noise - noise.mean(1, keepdim=True)) * scale  # channel mean: scale * m
    block = SpectralNormAttention(weighting="softmax")
    weights = block.attention_map(x.float())
    assert torch.isfinite(weights).all() and torch.isfinite(block(x.float())).all()
    torch.testing.assert_close(weights.double(), reference_map(x), rtol=1e-5, atol=1e-9)
    if scale >= 1e-10:
        u, s, vh = torch.linalg.svd(m * scale)
        exact = s[:, 0, None, None] * u[:, :, 0, None] * vh[:, None, 0, :]
        assert relative_errors(rank_one_approximation((m * scale).float()), exact).max() < 1e-5


def orthogonal(n: int, k: int, seed: int) -> torch.Tensor:
    """(n, k) orthonormal columns: the first k of a Householder reflection I - 2 w wᵀ / wᵀw."""
    w = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (torch.eye(n, dtype=torch.float64) - 2 * w @ w.T / (w.T @ w))[:, :k]


@pytest.mark.parametrize("case", ["gap 1.05, the rest tied", "constant", "zero"])
def test_the_spectra_at_the_ends_of_the_range_analysis_match_the_exact_map(case):
    """After a normalisation the top eigenvalue lambda1 lies between 1 (a flat spectrum, as in the
    first case and, through eps * I, the zero map) and n (a constant map, rank one with all entries
    equal), the ends of the range that four squarings in a row must keep in float32 (see
    ``_dominant_projector``); n = 512, the short side of a stem output of 2048 x 2048 pixels."""
    n, w = 512, 520
    u, v = orthogonal(n, n, seed=10), orthogonal(w, n, seed=11)
    if case == "constant":
        m = torch.full((1, n, w), -3.0, dtype=torch.float64)
        exact = m
    elif case == "zero":
        m = exact = torch.zeros(1, n, w, dtype=torch.float64)
    else:
        s = torch.ones(n, dtype=torch.float64)
        s[0] = 1.05
        m = ((u * s) @ v.T)[None]
        exact = 1.05 * u[None, :, :1] * v[None, :, 0]
    for side in (m, m.transpose(1, 2)):  # the rows' Gram matrix, then the columns'
        approx = rank_one_approximation(side.float())
        assert torch.isfinite(approx).all()
        expected = exact if side is m else exact.transpose(1, 2)
        if case == "zero":
            assert torch.equal(approx, torch.zeros_like(approx))
        else:
            assert relative_errors(approx, expected).max() < 1e-5


def test_every_second_squaring_normalised_gives_the_same_map(monkeypatch):
    """The schedule for Gram matrices above SEGMENT_SIDE_LIMIT, taken here for small ones."""
    m = spectrum(3, 24, 40, ratio=1.05, seed=12, dtype=torch.float32)
    grouped = rank_one_approximation(m)
    monkeypatch.setattr(sna_module, "SEGMENT_SIDE_LIMIT", 8)
    paired = rank_one_approximation(m)
    u, s, vh = torch.linalg.svd(m.double())
    exact = s[:, 0, None, None] * u[:, :, 0, None] * vh[:, None, 0, :]
    assert relative_errors(paired, exact).max() < 1e-5
    assert relative_errors(paired, grouped.double()).max() < 1e-5
    assert not torch.equal(paired, grouped)  # the other schedule did run


def test_an_exact_tie_gives_the_average_of_the_tied_terms():
    """sigma1 = sigma2: no rank-one map is the best (the SVD picks one of a circle of them); the
    block's is P M with P the average of the tied projectors, whatever basis spans them."""
    u, v = orthogonal(7, 3, seed=13), orthogonal(9, 3, seed=14)
    m = ((u * torch.tensor([2.0, 2.0, 1.0], dtype=torch.float64)) @ v.T)[None]
    expected = (u[:, :2] @ v[:, :2].T)[None]  # (2 u1 v1ᵀ + 2 u2 v2ᵀ) / 2
    torch.testing.assert_close(rank_one_approximation(m), expected, rtol=0, atol=1e-12)


def test_fewer_squarings_are_fewer_power_steps():
    # k squarings = 2^k power steps: the error falls as (sigma2/sigma1)^(2^(k+1)) until float64 precision
    m = spectrum(2, 20, 30, ratio=1.2, seed=7)
    u, s, vh = torch.linalg.svd(m)
    v = vh[:, 0]
    errors = []
    for k in range(5):
        est = dominant_singular_triple(m, squarings=k).v
        errors.append((1 - (est * v).sum(-1).abs()).max().item())
    assert all(b < a for a, b in zip(errors, errors[1:]))
    # 1 - |cos| of the step-2^k vector is about (sigma2/sigma1)^(2^(k+2)) / 2 for this spectrum
    bound = [1.2 ** -(2 ** (k + 2)) for k in range(5)]
    assert all(e < 2 * b for e, b in zip(errors, bound))


def test_results_do_not_depend_on_the_rest_of_the_batch_and_are_reproducible():
    x = torch.randn(4, 6, 15, 10) + torch.rand(4, 1, 1, 10) * 3
    block = SpectralNormAttention()
    together = block(x)
    alone = torch.cat([block(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-7)
    assert torch.equal(block(x), together)  # deterministic: no random start


def test_no_parameters_no_buffers_no_state():
    block = SpectralNormAttention(rank=3)
    assert list(block.parameters()) == []
    assert list(block.buffers()) == []
    assert block.state_dict() == {}


@pytest.mark.parametrize(
    "x",
    [
        pytest.param(torch.zeros(2, 3, 8, 9), id="all-zero"),
        pytest.param(torch.full((2, 3, 8, 9), 2.5), id="constant"),
        pytest.param(-torch.ones(1, 4, 6, 6), id="constant-negative"),
        pytest.param(torch.randn(2, 3, 1, 9), id="H=1"),
        pytest.param(torch.randn(2, 3, 9, 1), id="W=1"),
        pytest.param(torch.randn(1, 1, 1, 1), id="1x1"),
        pytest.param(torch.tensor([[1.0, -1.0], [1.0, -1.0]]).expand(1, 2, 2, 2).contiguous(), id="sign-symmetric"),
        pytest.param(torch.randn(2, 3, 8, 9) * 1e4, id="large"),
        pytest.param(torch.randn(2, 3, 8, 9) * 1e-30, id="tiny"),
    ],
)
@pytest.mark.parametrize("mode", ["power", "svd"])
@pytest.mark.parametrize("rank", [1, 2])
def test_degenerate_inputs_stay_finite_and_match_svd(x, mode, rank):
    block = SpectralNormAttention(rank=rank, mode=mode, weighting="softmax")
    y = block(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    expected = x.double() * reference_map(x, min(rank, x.shape[2], x.shape[3]))
    torch.testing.assert_close(y.double(), expected, rtol=1e-4, atol=1e-6 * x.abs().max().item())


def test_sign_symmetric_map_finds_its_singular_value():
    # the column sums of |M| (and any all-positive start) are orthogonal to this M's right singular vector
    m = torch.tensor([[[1.0, -1.0], [1.0, -1.0]]], dtype=torch.float64)
    result = dominant_singular_triple(m)
    torch.testing.assert_close(result.sigma, torch.tensor([2.0], dtype=torch.float64))


def test_empty_batch():
    x = torch.randn(0, 3, 8, 8, requires_grad=True)
    y = SpectralNormAttention()(x)
    assert y.shape == (0, 3, 8, 8)
    y.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("weighting", ["softmax", "softmax_mean1"])
def test_low_precision_under_autocast_decomposes_in_fp32(dtype, weighting):
    x = torch.randn(2, 16, 24, 20) + torch.linspace(0, 3, 20)
    conv = torch.nn.Conv2d(16, 16, 1)
    block = SpectralNormAttention(weighting=weighting)
    with torch.autocast("cpu", dtype=dtype):
        features = conv(x)
        y = block(features)
    assert features.dtype == dtype and y.dtype == dtype
    assert torch.isfinite(y).all()
    expected = features.float() * block.attention_map(features.float())
    torch.testing.assert_close(y.float(), expected, rtol=2e-2, atol=2e-2)
    for degenerate in (torch.zeros(1, 4, 8, 8, dtype=dtype), torch.full((1, 4, 8, 8), 60000.0).to(dtype)):
        with torch.autocast("cpu", dtype=dtype):
            assert torch.isfinite(block(degenerate)).all()


def test_gradcheck_power_iteration():
    x = (torch.randn(2, 3, 5, 4, dtype=torch.float64) + torch.linspace(0, 2, 4, dtype=torch.float64)).requires_grad_()
    for weighting in ("softmax", "softmax_mean1"):
        block = SpectralNormAttention(weighting=weighting)
        assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_gradcheck_svd_mode_and_rank_two():
    x = (torch.randn(1, 2, 5, 4, dtype=torch.float64) + torch.linspace(0, 2, 4, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(SpectralNormAttention(mode="svd"), (x,), eps=1e-6, atol=1e-5, rtol=1e-4)
    block = SpectralNormAttention(rank=2)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-4, rtol=1e-3)


def test_gradients_finite_on_degenerate_maps():
    for x in (torch.zeros(2, 3, 6, 5), torch.full((2, 3, 6, 5), 3.0), torch.randn(2, 3, 1, 5)):
        x = x.clone().requires_grad_()
        SpectralNormAttention()(x).square().sum().backward()
        assert torch.isfinite(x.grad).all()


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="mode"):
        SpectralNormAttention(mode="qr")
    with pytest.raises(ValueError, match="weighting"):
        SpectralNormAttention(weighting="sigmoid")
    with pytest.raises(ValueError, match="rank"):
        SpectralNormAttention(rank=0)
    with pytest.raises(ValueError, match="squarings"):
        SpectralNormAttention(squarings=-1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        SpectralNormAttention()(torch.randn(3, 4, 5))


def test_channels_positional_argument_is_ignored_as_timm_attn_layers_take_it():
    x = torch.randn(2, 5, 6, 7)
    torch.testing.assert_close(SpectralNormAttention(5)(x), SpectralNormAttention()(x), rtol=0, atol=0)
