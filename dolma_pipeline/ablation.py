"""Data ablations: variants of a pipeline's stages, run as the baseline's shared prefix plus each
variant's changed stage and everything after it, compared side by side with a seed-variance estimate.

A pipeline YAML may add

    seeds: [6198, 6199]          # training seeds of the baseline (the first one is used by every variant)
    variants:
      - name: no_gopher
        stages: {mix_train: {streams: ...}}   # per stage name: a patch deep-merged into its `config`

Each run is a flat list of stages. The stages before a variant's first patched stage are the baseline's own
(same names, configs and fingerprints), so the runner skips them as up to date; from the first patched
stage on, the stages are renamed ``<variant>__<stage>`` and every path under the output of one of those
stages is moved under ``<workdir>/ablation/<variant>/`` (so the variant never writes over the baseline).
Paths of shared stages (such as a fixed evaluation split) stay as they are. Extra baseline seeds rerun the
stages from the first ``train`` stage on with ``trainer.seed`` set. Stages that write attributes beside the
documents (tag, dedupe) name their outputs by experiment or ``dedupe.name``: a variant of such a stage
must give them a new name and patch the mix to read it. Report stages are not repeated per variant;
the comparison is written to ``<workdir>/ablation/`` (``ablation.json`` and ``index.html``).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

from dolma_pipeline.config import deep_merge
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.safety import check_name


@dataclass
class VariantConfig:
    name: str = ""  # the variant's name
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage name -> patch of its config


@dataclass
class Run:
    name: str  # "baseline", "baseline-seed<S>" or the variant's name
    variant: str  # "baseline" or the variant's name
    seed: int | None
    stages: list  # list[StageConfig]; stages shared with the baseline keep their names


def _rewrite(value: Any, moves: dict[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in moves.items():
            if value == old or value.startswith(old + "/"):
                return new + value[len(old) :]
        return value
    if isinstance(value, list):
        return [_rewrite(v, moves) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite(v, moves) for k, v in value.items()}
    return value


def _fork(stages: list, start: int, root: str, workdir: str, prefix: str, patches: dict[str, dict],
          seed: int | None) -> list:
    """Stages ``start..`` moved under ``root`` and renamed ``prefix__name``; earlier stages unchanged."""
    moves = {}
    for s in stages[start:]:
        if s.command == "report":
            continue
        rel = os.path.relpath(s.output, workdir)
        if rel.startswith(".."):
            raise ConfigError(f"stage {s.name}: output {s.output} is outside the workdir; an ablation cannot move it")
        moves[s.output] = os.path.join(root, rel)
    moves = dict(sorted(moves.items(), key=lambda kv: -len(kv[0])))  # longest prefix first
    out = list(stages[:start])
    for s in stages[start:]:
        if s.command == "report":
            continue
        s2 = copy.deepcopy(s)
        if s.name in patches:
            s2.config = deep_merge(copy.deepcopy(s2.config), copy.deepcopy(patches[s.name]))
        s2.config, s2.output, s2.inputs = _rewrite(s2.config, moves), _rewrite(s2.output, moves), _rewrite(s2.inputs, moves)
        if seed is not None and s.command == "train":
            s2.config.setdefault("overrides", {})["trainer.seed"] = seed
        s2.name = f"{prefix}__{s.name}"
        out.append(s2)
    return out


def plan_runs(stages: list, workdir: str, variants: list[VariantConfig], seeds: list[int]) -> list[Run]:
    """The baseline (first seed), one run per extra seed, then one run per variant (first seed)."""
    names = [s.name for s in stages]
    first_train = next((i for i, s in enumerate(stages) if s.command == "train"), None)
    if len(seeds) > 1 and first_train is None:
        raise ConfigError("seeds: several seeds need a train stage")
    seed0 = seeds[0] if seeds else None
    base = list(stages)
    if seed0 is not None and first_train is not None:
        base = list(stages[:first_train])
        for s in stages[first_train:]:
            s2 = copy.deepcopy(s)
            if s.command == "train":
                s2.config.setdefault("overrides", {})["trainer.seed"] = seed0
            base.append(s2)
    runs = [Run("baseline", "baseline", seed0, base)]
    root = os.path.join(workdir, "ablation")
    for seed in seeds[1:]:
        name = f"baseline-seed{seed}"
        runs.append(Run(name, "baseline", seed, _fork(base, first_train, os.path.join(root, name), workdir,
                                                    name, {}, seed)))
    seen = set()
    for v in variants:
        check_name(v.name, "variant name")
        if v.name in seen or v.name.startswith("baseline"):
            raise ConfigError(f"variant name {v.name!r} is used twice or starts with 'baseline'")
        seen.add(v.name)
        unknown = sorted(set(v.stages) - set(names))
        if unknown or not v.stages:
            raise ConfigError(f"variant {v.name}: unknown stages {unknown}; valid choices: {', '.join(names)}"
                              if unknown else f"variant {v.name}: no stage is changed")
        start = min(names.index(n) for n in v.stages)
        runs.append(Run(v.name, v.name, seed0, _fork(base, start, os.path.join(root, v.name), workdir, v.name,
                                                     v.stages, seed0)))
    return runs
