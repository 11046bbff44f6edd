"""Config loading: presets, overrides, unknown keys, the shipped YAML files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.config import ConfigError, ModelConfig, TrainConfig, load_config, parse_overrides

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


@pytest.mark.parametrize("name", ["tiny", "demo-cpu", "olmo-1b", "olmo-7b"])
def test_shipped_configs_load_with_the_olmo_vocabulary(name: str) -> None:
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.model.vocab_size == 50280 and cfg.model.padded_embedding_size == 50304
    assert cfg.tokenizer.eos_token_id == 50279
    assert cfg.data.train and all(src.paths for src in cfg.data.train)
    assert cfg.data.eval


def test_published_shapes() -> None:
    one, seven = load_config(CONFIGS / "olmo-1b.yaml"), load_config(CONFIGS / "olmo-7b.yaml")
    assert one.model.num_params() == 1_176_764_416 and one.model.weight_tying
    assert (one.optim.lr, one.scheduler.name, one.scheduler.warmup_steps) == (4e-4, "cosine", 2000)
    assert seven.model.ff_hidden // 2 == 11008 and not seven.model.weight_tying
    assert (seven.optim.lr, seven.scheduler.name, seven.scheduler.warmup_steps) == (3e-4, "linear", 5000)
    assert one.trainer.global_batch_size * one.sequence_length == 2048 * 2048


def test_overrides_are_typed_and_nested() -> None:
    cfg = load_config(
        CONFIGS / "tiny.yaml",
        ["--trainer.max_steps=7", "--optim.betas=[0.8, 0.9]", "--optim.z_loss", "1e-4", "--parallel.fsdp=off",
         "--data.train.0.paths=[a.npy, b.npy]", "--model.preset=olmo-60m"],
    )
    assert cfg.trainer.max_steps == 7 and cfg.optim.betas == (0.8, 0.9) and cfg.optim.z_loss == 1e-4
    assert cfg.parallel.fsdp == "off"  # YAML reads a bare `off` as False
    assert cfg.data.train[0].paths == ["a.npy", "b.npy"]
    assert cfg.model.d_model == 512 and cfg.model.max_sequence_length == 128  # the file's value wins


def test_unknown_keys_name_the_key_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"'trainer.max_stepz'.*max_steps"):
        load_config(CONFIGS / "tiny.yaml", ["--trainer.max_stepz=3"])
    with pytest.raises(ConfigError, match=r"'bogus'.*checkpoint"):
        load_config(None, ["--bogus=1"])
    with pytest.raises(ConfigError, match="unknown model preset 'olmo-3b'.*olmo-1b"):
        load_config(None, ["--model.preset=olmo-3b"])
    with pytest.raises(ConfigError, match="trainer.precision"):
        load_config(None, ["--trainer.precision=fp8"])
    with pytest.raises(ConfigError, match="trainer.max_steps: expected int"):
        load_config(None, ["--trainer.max_steps=many"])
    with pytest.raises(ConfigError, match="expected --key=value"):
        parse_overrides(["max_steps=3"])


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    from training.config import config_from_dict, save_config

    cfg = load_config(CONFIGS / "olmo-7b.yaml")
    save_config(cfg, tmp_path / "c.yaml")
    again = config_from_dict(yaml.safe_load((tmp_path / "c.yaml").read_text()))
    assert again == cfg
    assert isinstance(again, TrainConfig)


def test_flops_formula() -> None:
    cfg = ModelConfig.from_name("olmo-1b")
    n = cfg.num_flop_params()
    assert n == cfg.num_params()  # tied: the embedding is counted once, as the LM head matmul
    assert cfg.flops_per_token(2048) == 6 * n + 12 * 16 * 2048 * 2048
    seven = ModelConfig.from_name("olmo-7b")
    assert seven.num_flop_params() == seven.num_params() - 50304 * 4096
