"""`mlops`: one command, a subcommand per tool. Each subcommand is the tool's own parser and `main`,
imported only when it runs, so `mlops --help` is instant and a subcommand pays only for its own imports.
"""
from __future__ import annotations

import difflib
import importlib
import os
import sys
from dataclasses import dataclass
from importlib import metadata

DISTRIBUTION = "serverless-mlops"


@dataclass(frozen=True)
class Command:
    module: str  # its main(argv, prog) runs the command
    summary: str
    subcommand: str = ""  # for modules with several commands (the rollout CLI)


COMMANDS: dict[str, Command] = {
    "validate": Command("training.validate", "check a training CSV: columns, task, missing values, labels"),
    "train": Command("training.train", "train a model from a CSV into an artifact directory (SageMaker script mode)"),
    "evaluate": Command("training.evaluate", "score a candidate on held-out rows and gate it against production"),
    "registry": Command("training.registry", "list, describe, approve or reject versions in the Model Registry"),
    "runs": Command("mlops.runs", "list, show, compare pipeline runs (rejected ones too); export them to MLflow"),
    "promote": Command("stacks.rollout", "deploy an approved version to the API (canary, rolls back on alarms)", "promote"),
    "rollback": Command("stacks.rollout", "go back to the previously promoted version, or stop a canary", "rollback"),
    "status": Command("stacks.rollout", "the live version, canary weights and the promotion history", "status"),
    "deploy": Command("stacks.rollout", "deploy every stack (new code or configuration), keeping the live model", "deploy"),
    "drift": Command("drift_check.drift", "compare a current CSV with a reference CSV: JSON and HTML drift report"),
    "quality": Command("drift_check.quality", "join captured predictions to labels: realized vs estimated vs training metrics"),
    "batch": Command("batch_scoring.cli", "score CSV / JSON Lines files locally on every core, or start a batch job in AWS"),
    "serve": Command("mlops.serve", "serve a model directory with the prediction API on this machine (read its /docs)"),
    "demo": Command("demo.run", "run the whole loop on this machine against an embedded AWS (moto)"),
}


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: mlops <command> [options]", "",
             "The serverless MLOps stack's command line: train, register, promote, monitor.", "", "commands:"]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "`mlops <command> --help` describes a command's options, with an example.",
              "example:", "  mlops train --train wine.csv --model-dir out/ --target quality"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the command's own main; its exit status is ours."""
    try:
        return dispatch(argv)
    except BrokenPipeError:
        # The reader went away (`mlops runs list | head`): what it read is all it wanted, no traceback. Python's
        # documented handling: point stdout at devnull so the interpreter's last flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def dispatch(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"mlops {version()}")
        return 0
    name, rest = argv[0], argv[1:]
    command = COMMANDS.get(name)
    if command is None:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"mlops: unknown command {name!r}{hint}; `mlops --help` lists them", file=sys.stderr)
        return 2
    module = importlib.import_module(command.module)
    if command.subcommand:
        return module.main([command.subcommand, *rest], prog="mlops")
    return module.main(rest, prog=f"mlops {name}")
