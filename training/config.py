"""Configuration dataclasses, model presets, YAML loading and ``--a.b=c`` overrides.

Every component has a ``*Config`` dataclass; the whole run is a :class:`TrainConfig`. Unknown keys are
errors that name the key and the valid choices. The resolved config is plain data (``to_dict``) and is
written next to every checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class TrainingError(Exception):
    """Base class of the trainer's errors."""


class ConfigError(TrainingError):
    """A configuration value or key is invalid."""


class DataFormatError(TrainingError):
    """A token file is malformed or inconsistent with the config."""


# --------------------------------------------------------------------------------------------------
# Model


@dataclass
class ModelConfig:
    """The OLMo-1 decoder. ``preset`` names the starting point; other fields override it."""

    preset: str | None = None  # start from a preset: tiny, olmo-demo, olmo-60m, olmo-1b, olmo-7b
    d_model: int = 2048  # hidden size
    n_heads: int = 16  # attention heads
    n_layers: int = 16  # transformer blocks
    mlp_hidden_size: int | None = None  # fused up+gate width; None -> mlp_ratio * d_model
    mlp_ratio: int = 8  # fused SwiGLU width as a multiple of d_model
    vocab_size: int = 50280  # tokenizer vocabulary size
    embedding_size: int | None = None  # None -> vocab_size padded to a multiple of 128
    max_sequence_length: int = 2048  # context length
    weight_tying: bool = True  # share the embedding and the LM head
    rope_theta: float = 10_000.0  # RoPE base
    layer_norm_eps: float = 1e-5  # LayerNorm epsilon
    init_std: float | None = None  # None -> 1/sqrt(d_model) (OLMo's "mitchell" init)
    fused_loss: bool = True  # chunked LM-head + cross-entropy that never materialises all logits

    @property
    def padded_embedding_size(self) -> int:
        if self.embedding_size is not None:
            return self.embedding_size
        return 128 * math.ceil(self.vocab_size / 128)

    @property
    def ff_hidden(self) -> int:
        """Width of the fused SwiGLU projection (up + gate)."""
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else self.mlp_ratio * self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def validate(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"model.d_model={self.d_model} is not divisible by model.n_heads={self.n_heads}")
        if self.head_dim % 2:
            raise ConfigError(f"head dim {self.head_dim} must be even for RoPE")
        if self.ff_hidden % 2:
            raise ConfigError(f"model.mlp_hidden_size={self.ff_hidden} must be even (up and gate halves)")
        if self.padded_embedding_size < self.vocab_size:
            raise ConfigError(
                f"model.embedding_size={self.embedding_size} is smaller than vocab_size={self.vocab_size}"
            )

    def num_params(self) -> int:
        """Parameter count from the config formula (no biases, parameter-free LayerNorms)."""
        d, h, emb = self.d_model, self.ff_hidden, self.padded_embedding_size
        per_block = 3 * d * d + d * d + d * h + (h // 2) * d
        head = 0 if self.weight_tying else emb * d
        return emb * d + self.n_layers * per_block + head

    def num_flop_params(self) -> int:
        """N in ``6N + 12 L d T``: every matmul weight, i.e. the blocks plus the LM head (counted even when
        tied, since it is a matmul), excluding the embedding lookup."""
        d, h = self.d_model, self.ff_hidden
        per_block = 3 * d * d + d * d + d * h + (h // 2) * d
        return self.n_layers * per_block + self.padded_embedding_size * d

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs per token (forward + backward): 6·N + 12·L·d·T."""
        return 6 * self.num_flop_params() + 12 * self.n_layers * self.d_model * seq_len

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> ModelConfig:
        """A preset by name (``tiny``, ``olmo-60m``, ``olmo-demo``, ``olmo-1b``, ``olmo-7b``)."""
        if name not in MODEL_PRESETS:
            raise ConfigError(f"unknown model preset {name!r}; valid choices: {sorted(MODEL_PRESETS)}")
        cfg = dataclasses.replace(MODEL_PRESETS[name], **overrides)
        cfg.preset = name
        cfg.validate()
        return cfg

    def build(self, device: Any = None):  # -> training.model.OLMo
        from training.model import OLMo

        return OLMo(self, device=device)


MODEL_PRESETS: dict[str, ModelConfig] = {
    # For tests: a couple of small blocks; real vocabulary so token files from the OLMo tokenizer work.
    "tiny": ModelConfig(d_model=64, n_heads=4, n_layers=2, max_sequence_length=256),
    # For CPU demos: small enough for a few hundred steps in minutes on two cores.
    "olmo-demo": ModelConfig(d_model=128, n_heads=4, n_layers=4, max_sequence_length=256),
    # ~60M parameters (25.8M of them the embedding).
    "olmo-60m": ModelConfig(d_model=512, n_heads=8, n_layers=8, max_sequence_length=1024),
    "olmo-1b": ModelConfig(d_model=2048, n_heads=16, n_layers=16, mlp_ratio=8, weight_tying=True),
    "olmo-7b": ModelConfig(d_model=4096, n_heads=32, n_layers=32, mlp_hidden_size=22016, weight_tying=False),
}


# --------------------------------------------------------------------------------------------------
# Data, tokenizer, optimisation


@dataclass
class TokenizerConfig:
    eos_token_id: int = 50279  # id after each document
    pad_token_id: int = 1  # padding id
    path: str | None = None  # a tokenizers JSON, copied into HF exports


@dataclass
class SourceConfig:
    """A labelled set of token files (globs, local paths or s3:// URLs)."""

    label: str = "default"  # the source's name in metrics
    paths: list[str] = field(default_factory=list)  # token files: paths, globs or s3:// URLs


@dataclass
class DataConfig:
    train: list[SourceConfig] = field(default_factory=list)  # labelled training sources
    eval: list[SourceConfig] = field(default_factory=list)  # labelled held-out sources (eval loss)
    dtype: str = "uint16"  # token file dtype: uint16 or uint32
    sequence_length: int | None = None  # None -> model.max_sequence_length
    prefetch: bool = True  # read the next batch in a background thread

    def validate(self) -> None:
        if self.dtype not in ("uint16", "uint32"):
            raise ConfigError(f"data.dtype={self.dtype!r}; valid choices: ['uint16', 'uint32']")
        for i, src in enumerate(self.train + self.eval):
            if not src.paths:
                raise ConfigError(f"data source #{i} ({src.label!r}) has no paths")


@dataclass
class OptimConfig:
    lr: float = 4e-4  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas
    eps: float = 1e-5  # AdamW epsilon
    weight_decay: float = 0.1  # decay on Linear weights only
    clip_grad_norm: float | None = 1.0  # global gradient-norm clip (0: off)
    z_loss: float | None = None  # coefficient of logsumexp(logits)^2; OLMo uses 1e-4 when enabled
    impl: str = "auto"  # auto | fused | foreach | for-loop


@dataclass
class SchedulerConfig:
    name: str = "cosine"  # cosine | linear | constant
    warmup_steps: int = 2000  # linear warmup from 0.1x peak
    warmup_min_ratio: float = 0.1  # warmup rises linearly from this fraction of the peak
    alpha_f: float = 0.1  # floor as a fraction of the peak
    t_max: int | None = None  # None -> trainer.max_steps


@dataclass
class TaskConfig:
    """One multiple-choice task: a JSONL file (globs allowed) and how to prompt it."""

    name: str = ""  # the task's name in metrics
    path: str = ""  # JSONL task file
    num_shots: int = 0  # k-shot examples
    seed: int = 1234  # seed of the k-shot draw
    target_delimiter: str = " "  # text between context and choice
    fewshot_delimiter: str = "\n\n"  # text between examples
    limit: int | None = None  # score only the first N questions (shots are still drawn from all)
    # instead of `path`: a next-sentence task built from these Dolma documents (training.eval.cloze)
    from_documents: list[str] = field(default_factory=list)
    num_questions: int = 200


@dataclass
class EvaluationConfig:
    """Downstream evaluation, in the loop (every ``interval`` steps and at the end) and offline
    (``olmo-train eval``): Paloma-style perplexity per source over Dolma documents, and multiple-choice
    tasks scored by log-likelihood. Both need a tokenizer (``tokenizer.path``)."""

    documents: list[str] = field(default_factory=list)  # Dolma JSONL globs; grouped by their `source`
    tasks: list[TaskConfig] = field(default_factory=list)  # multiple-choice tasks
    stride: int | None = None  # sliding-window stride for long documents; None -> half the context
    batch_size: int | None = None  # sequences per forward; None -> trainer.micro_batch_size
    max_documents: int | None = None  # per source: the first N documents in file order (None: all)
    interval: int | None = None  # None -> trainer.eval_interval


@dataclass
class TrainerConfig:
    max_steps: int = 1000  # optimiser steps (the schedule's length)
    stop_at: int | None = None  # stop early without changing the schedule
    global_batch_size: int = 8  # instances per optimiser step, all ranks together
    micro_batch_size: int = 8  # instances per forward/backward on one rank
    precision: str = "bf16"  # bf16 | fp32
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 6198
    log_interval: int = 1  # print every N steps
    eval_interval: int = 0  # 0 -> only at the end
    eval_max_batches: int | None = None  # cap on eval batches per source


@dataclass
class ParallelConfig:
    fsdp: str = "auto"  # auto (when world size > 1) | on | off
    activation_checkpointing: bool = False  # recompute activations in the backward pass
    compile: bool = False  # torch.compile the model
    reshard_after_forward: bool = True  # FSDP2: free gathered weights after forward
    backend: str = "auto"  # auto (nccl on CUDA, gloo on CPU) | nccl | gloo


@dataclass
class CheckpointConfig:
    save_folder: str = "runs/default"  # checkpoint directory
    save_interval: int = 0  # 0 -> only at the end
    keep_last: int = 2  # checkpoints kept (older pruned)
    resume: str = "auto"  # auto (latest in save_folder) | never | <path to a step directory>
    unsharded: bool = True  # also write model.safetensors + config with every checkpoint


@dataclass
class WandbConfig:
    enabled: bool = False  # log to W&B
    project: str = "olmo-train"  # W&B project
    entity: str | None = None  # W&B entity
    name: str | None = None  # run name (default run_name)


@dataclass
class MetricsConfig:
    jsonl: bool = True  # write save_folder/metrics.jsonl
    plot: bool = True  # write loss.png at the end
    peak_tflops: float | None = None  # per device; None -> known CUDA devices, else MFU omitted
    wandb: WandbConfig = field(default_factory=WandbConfig)  # Weights & Biases logging


@dataclass
class TrainConfig:
    run_name: str = "olmo"  # the run's name (logs, W&B)
    model: ModelConfig = field(default_factory=lambda: ModelConfig.from_name("tiny"))  # the decoder's shape
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)  # special token ids and the tokenizer file
    data: DataConfig = field(default_factory=DataConfig)  # token files to train and evaluate on
    optim: OptimConfig = field(default_factory=OptimConfig)  # AdamW settings
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)  # learning-rate schedule
    trainer: TrainerConfig = field(default_factory=TrainerConfig)  # steps, batch sizes, precision, device
    parallel: ParallelConfig = field(default_factory=ParallelConfig)  # FSDP2, activation checkpointing, torch.compile
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)  # where and how often to save
    metrics: MetricsConfig = field(default_factory=MetricsConfig)  # metrics.jsonl, the loss plot, W&B
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)  # per-source perplexity and multiple-choice tasks

    @property
    def sequence_length(self) -> int:
        return self.data.sequence_length or self.model.max_sequence_length

    def validate(self) -> None:
        self.model.validate()
        self.data.validate()
        t = self.trainer
        if t.precision not in ("bf16", "fp32"):
            raise ConfigError(f"trainer.precision={t.precision!r}; valid choices: ['bf16', 'fp32']")
        if self.scheduler.name not in ("cosine", "linear", "constant"):
            raise ConfigError(
                f"scheduler.name={self.scheduler.name!r}; valid choices: ['constant', 'cosine', 'linear']"
            )
        if self.parallel.fsdp not in ("auto", "on", "off"):
            raise ConfigError(f"parallel.fsdp={self.parallel.fsdp!r}; valid choices: ['auto', 'off', 'on']")
        if self.optim.impl not in ("auto", "fused", "foreach", "for-loop"):
            raise ConfigError(
                f"optim.impl={self.optim.impl!r}; valid choices: ['auto', 'for-loop', 'foreach', 'fused']"
            )
        if self.sequence_length < 2:
            raise ConfigError(f"sequence length {self.sequence_length} must be at least 2")
        if self.tokenizer.eos_token_id >= self.model.vocab_size:
            raise ConfigError(
                f"tokenizer.eos_token_id={self.tokenizer.eos_token_id} >= model.vocab_size={self.model.vocab_size}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------------
# Building dataclasses from plain data


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _convert(value, non_none[0], where)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin is list:
        if isinstance(value, (str, dict)) or not hasattr(value, "__iter__"):
            value = [value]
        return [_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "1e-4" (no dot) as a string
        except ValueError:
            pass
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, bool):
        return "on" if value else "off"  # YAML 1.1 reads a bare on/off as a bool
    if tp is str and isinstance(value, (str, int, float)):
        return str(value)
    if tp is Any:
        return value
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys raise :class:`ConfigError` naming the choices."""
    types = _field_types(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            full = f"{where}.{key}" if where else key
            raise ConfigError(f"unknown config key {full!r}; valid choices: {sorted(names)}")
    if cls is ModelConfig and data.get("preset"):
        base = dataclasses.asdict(ModelConfig.from_name(data["preset"]))
        data = {**base, **data}
    kwargs = {k: _convert(v, types[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node: Any = tree
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[int(part)]
            continue
        if part not in node or node[part] is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"override {dotted!r}: {'.'.join(parts[: i + 1])} is not a section")
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def parse_overrides(args: list[str]) -> list[tuple[str, Any]]:
    """``--a.b=c`` / ``--a.b c`` pairs; values are parsed as YAML (``--x=[1,2]``, ``--y=null``)."""
    out: list[tuple[str, Any]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"expected --key=value, got {arg!r}")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
        elif i + 1 < len(args):
            key, raw = arg[2:], args[i + 1]
            i += 1
        else:
            raise ConfigError(f"override {arg!r} has no value")
        import yaml

        out.append((key, yaml.safe_load(raw) if raw != "" else ""))
        i += 1
    return out


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a YAML run config, apply overrides, validate."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{path}: not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
    for key, value in parse_overrides(overrides or []):
        # Route overrides through the full tree so a preset change keeps the other model keys.
        _set_dotted(data, key, value)
    cfg = from_dict(TrainConfig, data)
    cfg.validate()
    return cfg


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    cfg = from_dict(TrainConfig, data)
    cfg.validate()
    return cfg


def config_to_yaml(cfg: TrainConfig) -> str:
    import yaml  # imported here so the model and data modules need only torch and numpy

    return yaml.safe_dump(_plain(cfg.to_dict()), sort_keys=False)


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(config_to_yaml(cfg))


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
