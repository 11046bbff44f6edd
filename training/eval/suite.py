"""An evaluation suite built once from :class:`EvaluationConfig` and run on any model state: the same
object serves the training loop's callback and ``olmo-train eval``, so the two cannot disagree."""

from __future__ import annotations

from training.config import ConfigError, EvaluationConfig, TokenizerConfig
from training.eval.documents import TextEncoder, read_documents
from training.eval.multiple_choice import MultipleChoiceTask
from training.eval.perplexity import PerplexityEvaluator


def _first_per_source(docs: list, limit: int | None) -> list:
    if limit is None:
        return docs
    seen: dict[str, int] = {}
    out = []
    for d in docs:
        if seen.get(d.source, 0) < limit:
            seen[d.source] = seen.get(d.source, 0) + 1
            out.append(d)
    return out


class EvalSuite:
    def __init__(self, cfg: EvaluationConfig, tokenizer: TokenizerConfig, tokenizer_file: str | None,
                 max_len: int, batch_size: int) -> None:
        if not (cfg.documents or cfg.tasks):
            raise ConfigError("evaluation: give documents (per-source perplexity) or tasks (multiple choice)")
        if not tokenizer_file:
            raise ConfigError("evaluation needs a tokenizer file: set tokenizer.path (or pass --tokenizer)")
        encoder = TextEncoder(tokenizer_file)
        self.eos, self.pad = tokenizer.eos_token_id, tokenizer.pad_token_id
        self.batch_size = cfg.batch_size or batch_size
        self.perplexity = (
            PerplexityEvaluator(_first_per_source(read_documents(cfg.documents), cfg.max_documents), encoder,
                                self.eos, max_len, cfg.stride)
            if cfg.documents else None
        )
        self.tasks = [MultipleChoiceTask(t, encoder, self.eos, max_len) for t in cfg.tasks]

    def run(self, model, device, autocast=None) -> dict:
        """``{"perplexity": {...}, "tasks": {name: metrics}}``."""
        kw = {"batch_size": self.batch_size, "device": device, "pad_id": self.pad, "autocast": autocast}
        out: dict = {}
        if self.perplexity is not None:
            out["perplexity"] = self.perplexity.run(model, **kw)
        if self.tasks:
            out["tasks"] = {t.name: t.run(model, **kw).metrics for t in self.tasks}
        return out


def flatten(results: dict) -> dict[str, float]:
    """Metric names for metrics.jsonl: ``eval/ppl/<source>/<metric>``, ``eval/task/<name>/<metric>``."""
    flat: dict[str, float] = {}
    for group, metrics in results.get("perplexity", {}).items():
        name = group.removeprefix("source/")
        for k in ("loss", "perplexity", "bits_per_byte"):
            if k in metrics:
                flat[f"eval/ppl/{name}/{k}"] = metrics[k]
    for task, metrics in results.get("tasks", {}).items():
        for k in ("acc", "acc_per_char", "acc_per_token"):
            flat[f"eval/task/{task}/{k}"] = metrics[k]
    return flat
