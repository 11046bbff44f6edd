"""The OLMo decoder's invariants, parametrised over devices (CUDA cases skip without a GPU)."""

from __future__ import annotations

import math

import pytest
import torch

from training.config import ModelConfig
from training.loss import fused_linear_cross_entropy, plain_linear_cross_entropy
from training.model import OLMo

DEVICES = [
    pytest.param("cpu"),
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")]),
]
V = 384  # small vocabulary keeps the tests fast; embedding rows = 384 (a multiple of 128)


def tiny(**kw) -> ModelConfig:
    return ModelConfig.from_name("tiny", vocab_size=V, **kw)


def build(cfg: ModelConfig, device: str = "cpu", seed: int = 0) -> OLMo:
    torch.manual_seed(seed)
    return OLMo(cfg, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_output_shape_and_initial_loss(device: str) -> None:
    model = build(tiny(), device)
    ids = torch.randint(0, V, (3, 32), device=device)
    assert model(ids).shape == (3, 32, 384)
    loss, ce, z = model(ids, ids)
    assert z is None and loss.shape == ()
    # Logits at init have std ~1 (unit-norm hidden states, 1/sqrt(d) embeddings): loss ~ ln V + 1/2.
    assert abs(float(ce) - math.log(V)) < 1.0


@pytest.mark.parametrize("device", DEVICES)
def test_causality(device: str) -> None:
    model = build(tiny(), device).eval()
    ids = torch.randint(0, V, (2, 40), device=device)
    changed = ids.clone()
    changed[:, 25:] = (changed[:, 25:] + 7) % V
    with torch.no_grad():
        a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :25], b[:, :25], rtol=1e-5, atol=1e-5)
    assert (a[:, 25:] - b[:, 25:]).abs().max() > 1e-3


@pytest.mark.parametrize("device", DEVICES)
def test_every_parameter_gets_a_finite_gradient(device: str) -> None:
    model = build(tiny(weight_tying=False), device)
    ids = torch.randint(0, V, (2, 16), device=device)
    loss, _, _ = model(ids, ids, z_loss=1e-4)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_autocast_finite_and_close_to_fp32(device: str) -> None:
    model = build(tiny(), device)
    ids = torch.randint(0, V, (2, 32), device=device)
    with torch.no_grad():
        ref = float(model(ids, ids)[1])
        with torch.autocast(device, dtype=torch.bfloat16):
            low = float(model(ids, ids)[1])
    assert math.isfinite(low) and abs(low - ref) < 0.05


@pytest.mark.parametrize(
    "name,expected",
    [("olmo-1b", 1_176_764_416), ("olmo-7b", 6_888_095_744), ("olmo-60m", None), ("tiny", None)],
)
def test_parameter_count_matches_config_formula_on_meta(name: str, expected: int | None) -> None:
    cfg = ModelConfig.from_name(name)
    model = cfg.build(device="meta")
    n = sum(p.numel() for p in model.parameters())
    assert n == cfg.num_params()
    if expected is not None:
        assert n == expected
    assert all(p.is_meta for p in model.parameters())
    assert cfg.padded_embedding_size == 50304


def test_60m_preset_is_about_60m() -> None:
    assert 55e6 < ModelConfig.from_name("olmo-60m").num_params() < 65e6


def test_overfits_one_batch() -> None:
    model = build(tiny())
    ids = torch.randint(0, V, (2, 32))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss, _, _ = model(ids, ids)
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert float(loss.detach()) < 0.3


def test_same_seed_same_logits_and_different_seed_differs() -> None:
    ids = torch.randint(0, V, (2, 16))
    a, b, c = (build(tiny(), seed=s)(ids) for s in (1, 1, 2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_state_dict_keys_are_pinned() -> None:
    tied = build(tiny()).state_dict()
    per_block = ["att_proj.weight", "attn_out.weight", "ff_proj.weight", "ff_out.weight"]
    expected = ["wte.weight"] + [f"blocks.{i}.{k}" for i in range(2) for k in per_block]
    assert list(tied) == expected
    untied = build(tiny(weight_tying=False)).state_dict()
    assert list(untied) == expected + ["lm_head.weight"]
    d, f = 64, 512
    assert tied["blocks.0.att_proj.weight"].shape == (3 * d, d)
    assert tied["blocks.0.ff_proj.weight"].shape == (f, d)
    assert tied["blocks.0.ff_out.weight"].shape == (d, f // 2)
    assert tied["wte.weight"].shape == (384, d)


@torch.no_grad()
def test_init_follows_olmo() -> None:
    cfg = ModelConfig.from_name("tiny", vocab_size=50280)
    model = build(cfg)
    d = cfg.d_model
    w = model.wte.weight
    assert abs(float(w.std()) - 1 / math.sqrt(d)) < 0.1 / math.sqrt(d)
    assert float(w.abs().max()) <= 3 / math.sqrt(d) + 1e-6  # truncated at 3 sigma
    out1 = model.blocks[1].attn_out.weight
    assert abs(float(out1.std()) - 1 / math.sqrt(2 * d * 2)) < 0.2 / math.sqrt(2 * d * 2)
    ffo = model.blocks[0].ff_out.weight
    assert float(ffo.abs().max()) <= 3 / math.sqrt(2 * 256) + 1e-6


def test_swiglu_uses_olmo_half_order() -> None:
    """The first half of ff_proj is "up" (multiplied), the second is "gate" (through SiLU)."""
    blk = build(tiny()).blocks[0]
    x = torch.randn(1, 3, 64)
    up, gate = (x @ blk.ff_proj.weight.t()).chunk(2, dim=-1)
    expected = (torch.nn.functional.silu(gate) * up) @ blk.ff_out.weight.t()
    torch.testing.assert_close(blk.mlp(x), expected)


@pytest.mark.parametrize("z", [None, 1e-4])
def test_fused_loss_matches_plain_loss_and_gradients(z: float | None) -> None:
    torch.manual_seed(0)
    h = torch.randn(70, 32, requires_grad=True)
    w = torch.randn(200, 32, requires_grad=True)
    y = torch.randint(0, 200, (70,))
    lf, cf, zf = fused_linear_cross_entropy(h, w, y, z, chunk_rows=16)
    gh_f, gw_f = torch.autograd.grad(lf * 3.0, (h, w))
    lp, cp, zp = plain_linear_cross_entropy(h, w, y, z)
    gh_p, gw_p = torch.autograd.grad(lp * 3.0, (h, w))
    torch.testing.assert_close(lf, lp)
    torch.testing.assert_close(cf, cp)
    assert (zf is None) == (zp is None) == (z is None)
    torch.testing.assert_close(gh_f, gh_p)
    torch.testing.assert_close(gw_f, gw_p)


def test_activation_checkpointing_gives_the_same_gradients() -> None:
    ids = torch.randint(0, V, (2, 16))
    grads = []
    for ac in (False, True):
        model = build(tiny())
        for blk in model.blocks:
            blk.activation_checkpointing = ac
        model(ids, ids)[0].backward()
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
