"""`dolma pipeline run CONFIG.yaml`: tag → dedupe → mix → tokenize → train → export, from one YAML file.

Each stage names a command and that command's own config (its YAML schema, unchanged). A stage is
skipped when its record in `<workdir>/.pipeline/` matches: same command, same config, same fingerprint
of its inputs and of every earlier stage. Changing one stage's config therefore reruns that stage and
everything after it, nothing before. Every stage output gets a `lineage.json` (see lineage.py).
`{workdir}` and `{processes}` in any string of the YAML are replaced before use.

`executor` (auto by default) and `ray_address` are the defaults of every data stage that does not set
its own. On Ray (`executor: ray`, or a cluster address with auto) the pipeline starts or joins Ray once
and every data stage runs in that session; with auto on one machine no Ray is started (local pool).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from dolma_pipeline.ablation import VariantConfig, plan_runs
from dolma_pipeline.config import fingerprint, from_dict, load_yaml
from dolma_pipeline.errors import ConfigError, DolmaError
from dolma_pipeline.executor import Executor, choose_executor, open_session
from dolma_pipeline.lineage import Lineage, code_version, directory_fingerprint
from dolma_pipeline.safety import check_name, redact

log = logging.getLogger(__name__)

DOLMA_COMMANDS = ("warc", "tag", "dedupe", "decontaminate", "mix", "tokenize", "report", "train-classifier")
OTHER_COMMANDS = ("train", "export", "generate")


@dataclass
class StageConfig:
    name: str  # the stage's name (its record file)
    command: str  # the command it runs
    config: dict[str, Any] = field(default_factory=dict)  # that command's own config
    output: str = ""  # its main output directory
    inputs: list[str] = field(default_factory=list)  # directories whose change reruns it

    def validate(self) -> None:
        check_name(self.name, "stage name")  # names the stage's record file
        if self.command not in DOLMA_COMMANDS + OTHER_COMMANDS:
            raise ConfigError(f"stage {self.name}: unknown command {self.command!r}; valid choices: "
                              f"{', '.join(DOLMA_COMMANDS + OTHER_COMMANDS)}")
        if not self.output:
            raise ConfigError(f"stage {self.name}: `output` (its main output directory) is required")


@dataclass
class PipelineConfig:
    workdir: str = "pipeline-output"  # the run's directory ({workdir} in strings)
    processes: int = 2
    executor: Executor = "auto"  # the default of every data stage; see dolma_pipeline.executor.choose_executor
    ray_address: str | None = None
    stages: list[StageConfig] = field(default_factory=list)  # the stages, in order
    seeds: list[int] = field(default_factory=list)  # ablations: training seeds of the baseline
    variants: list[VariantConfig] = field(default_factory=list)  # ablations: see dolma_pipeline.ablation

    def validate(self) -> None:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique: {names}")


def _substitute(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in variables.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    return value


def load_pipeline(path: str, workdir: str | None = None, processes: int | None = None) -> PipelineConfig:
    raw = load_yaml(path)
    if workdir:
        raw["workdir"] = workdir
    if processes:
        raw["processes"] = processes
    raw.setdefault("workdir", PipelineConfig.workdir)
    variables = {"workdir": os.path.abspath(str(raw["workdir"])), "processes": str(raw.get("processes", 2))}
    return from_dict(PipelineConfig, _substitute(raw, variables))


def _record_path(workdir: str, stage: str) -> str:
    return os.path.join(workdir, ".pipeline", f"{stage}.json")


def _run_stage(stage: StageConfig, pipeline: PipelineConfig) -> None:
    if stage.command in DOLMA_COMMANDS:
        from dolma_pipeline.cli import COMMANDS

        module = importlib.import_module(COMMANDS[stage.command][0])
        config = dict(stage.config)
        fields = module.Config.__dataclass_fields__
        # not in the stage's fingerprint: where the shards run does not change the bytes
        defaults = {"processes": pipeline.processes, "executor": pipeline.executor,
                    "ray_address": pipeline.ray_address}
        for key, value in defaults.items():
            if key in fields and value is not None:
                config.setdefault(key, value)
        code = module.run(from_dict(module.Config, config))
        if code:
            raise DolmaError(f"stage {stage.name} ({stage.command}) exited with status {code}")
        return
    if stage.command == "train":
        cmd = [sys.executable, "-m", "training.cli", stage.config["config"]]
        for key, value in stage.config.get("overrides", {}).items():
            if key == "tokenizer.path" and value == "default":  # the OLMo tokenizer from the asset cache
                from dolma_pipeline.assets import asset_path

                value = asset_path("allenai_gpt-neox-olmo-dolma-v1_5.json")
            text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
            cmd.append(f"--{key}={text}")
    elif stage.command == "export":
        cmd = [sys.executable, "-m", "training.cli", "export", stage.config["checkpoint"], stage.output]
        tokenizer = stage.config.get("tokenizer")
        if tokenizer == "default":
            from dolma_pipeline.assets import asset_path

            tokenizer = asset_path("allenai_gpt-neox-olmo-dolma-v1_5.json")
        if tokenizer:
            cmd += ["--tokenizer", tokenizer]
    else:  # generate
        cmd = [sys.executable, "-m", "training.generate", stage.config["model"], "--output", stage.output,
               "--prompt", stage.config.get("prompt", "The"), "--max-new-tokens",
               str(stage.config.get("max_new_tokens", 40))]
    log.info("stage %s: %s", stage.name, shlex.join(cmd))
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise DolmaError(f"stage {stage.name} failed (exit {proc.returncode}): {shlex.join(cmd)}")


def run_pipeline(config: PipelineConfig, only: list[str] | None = None, force: bool = False) -> list[str]:
    """Run the stages in order, skipping up-to-date ones; returns the names of the stages that ran.

    With Ray chosen for the pipeline, one Ray session (started or joined here) serves every data stage."""
    os.makedirs(config.workdir, exist_ok=True)
    placement = choose_executor(config.processes, config.ray_address, False, config.executor)
    print(f"[pipeline] executor: {placement.kind} ({placement.reason})")
    with open_session(config.processes, config.ray_address, False, config.executor):
        if not (config.variants or len(config.seeds) > 1):
            return _run_stages(config, only, force)
        from dolma_pipeline.ablation_report import write_report

        runs = plan_runs(config.stages, config.workdir, config.variants, config.seeds)
        ran = []
        for run in runs:
            print(f"[pipeline] ablation run {run.name} (seed {run.seed})")
            ran += _run_stages(dataclasses.replace(config, stages=run.stages), only, force)
        print(f"[pipeline] ablation: {write_report(runs, os.path.join(config.workdir, 'ablation'))}")
        return ran


def _run_stages(config: PipelineConfig, only: list[str] | None, force: bool) -> list[str]:
    ran, upstream = [], ""
    version = code_version()
    for stage in config.stages:
        inputs = {path: directory_fingerprint(path) for path in stage.inputs}
        stage_fp = fingerprint([stage.command, stage.config, stage.output, inputs, upstream])
        upstream = stage_fp
        record_path = _record_path(config.workdir, stage.name)
        if os.path.exists(record_path) and not force and (only is None or stage.name not in only):
            with open(record_path) as fh:
                record = json.load(fh)
            if record.get("fingerprint") == stage_fp and os.path.exists(stage.output):
                print(f"[pipeline] {stage.name}: up to date, skipped")
                continue
        print(f"[pipeline] {stage.name}: running {stage.command}")
        start = time.perf_counter()
        _run_stage(stage, config)
        seconds = time.perf_counter() - start
        Lineage(stage=stage.name, command=stage.command, output=stage.output, config=stage.config,
                inputs=stage.inputs, input_fingerprints=inputs, code_version=version, fingerprint=stage_fp).write()
        os.makedirs(os.path.dirname(record_path), exist_ok=True)
        with open(record_path + ".tmp", "w") as fh:
            json.dump({"fingerprint": stage_fp, "seconds": round(seconds, 2), "output": redact(stage.output)}, fh)
        os.replace(record_path + ".tmp", record_path)
        print(f"[pipeline] {stage.name}: done in {seconds:.1f}s")
        ran.append(stage.name)
    return ran


def main(argv: list[str], config_file: str | None = None) -> int:
    """`dolma pipeline run CONFIG.yaml [--workdir DIR] [--processes N] [--force] [--only STAGE ...]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="dolma pipeline")
    parser.add_argument("action", choices=["run", "show"])
    parser.add_argument("config", nargs="?", default=config_file)
    parser.add_argument("--workdir")
    parser.add_argument("--processes", type=int)
    parser.add_argument("--force", action="store_true", help="rerun every stage")
    parser.add_argument("--only", nargs="*", help="rerun these stages even if up to date")
    args = parser.parse_args(argv)
    if not args.config:
        raise ConfigError("dolma pipeline run CONFIG.yaml: no config given")
    config = load_pipeline(args.config, args.workdir, args.processes)
    if args.action == "show":
        print(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
        return 0
    start = time.perf_counter()
    ran = run_pipeline(config, args.only, args.force)
    print(f"[pipeline] finished in {time.perf_counter() - start:.1f}s; ran: {', '.join(ran) or 'nothing'}")
    for stage in config.stages:
        if stage.command == "report":
            print(f"[pipeline] report: {os.path.join(stage.output, 'index.html')}")
    return 0
