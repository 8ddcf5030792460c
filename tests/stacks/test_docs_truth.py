"""The docs say what the code does: stack outputs they name exist, commands they show run, snippets work."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import names
from contracts.artifact import read_metadata
from inference.validation import FeatureReader
from mlops.cli import main as mlops
from tests.stacks.stack_helpers import REPO

pytestmark = pytest.mark.slow

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
STACK_OF_SUFFIX = {names.STORAGE: "storage", names.TRAINING: "training", names.SERVING: "serving",
                   names.MONITORING: "monitoring", names.BATCH_SCORING: "batch"}


def named_outputs() -> set[tuple[str, str, str]]:
    """(doc, stack suffix, output id) for every `$(out SUFFIX ID)`, `stack_output <project>-SUFFIX ID` and
    every output listed in operations.md's table of stack outputs."""
    found = set()
    for doc in DOCS:
        text = doc.read_text()
        found |= {(doc.name, s, o) for s, o in re.findall(r"\$\(out (\w+) (\w+)\)", text)}
        found |= {(doc.name, s, o) for s, o in re.findall(rf"stack_output {names.DEFAULT_PROJECT}-(\w+) (\w+)", text)}
        for suffix, cell in re.findall(r"^\| `\$P-(\w+)` \| (.+) \|$", text, flags=re.MULTILINE):
            found |= {(doc.name, suffix, o) for o in re.findall(r"`([A-Z]\w+)`", cell)}
    return found


def test_every_stack_output_the_docs_name_exists(default_app) -> None:
    named = named_outputs()
    assert len(named) > 15  # the parsing found the docs' references
    missing = []
    for doc, suffix, output in sorted(named):
        template = getattr(default_app, STACK_OF_SUFFIX[suffix])
        if output not in template.find_outputs("*"):
            missing.append(f"{doc}: {names.stack_name(names.DEFAULT_PROJECT, suffix)} has no output {output}")
    assert not missing, missing


def documented_commands() -> set[tuple[str, ...]]:
    """Each `mlops <command> [subcommand]` the README shows, in code blocks or in its command table."""
    text = (REPO / "README.md").read_text()
    found = set()
    for line in re.findall(r"(?:^|`)mlops ([a-z][^`\n]*)", text, flags=re.MULTILINE):
        words = line.split()
        command = words[0]
        second = words[1] if len(words) > 1 else ""
        if re.fullmatch(r"[a-z]+(\\?\|[a-z]+)*", second) and command in ("registry", "batch"):
            found |= {(command, sub) for sub in re.split(r"\\?\|", second)}
        else:
            found.add((command,))
    return found


def test_every_command_the_readme_shows_exists(capsys: pytest.CaptureFixture) -> None:
    commands = documented_commands()
    assert {("batch",), ("batch", "start"), ("registry", "list"), ("train",), ("promote",)} <= commands
    for command in sorted(commands):
        with pytest.raises(SystemExit) as done:
            mlops([*command, "--help"])
        assert done.value.code == 0, command
        usage = capsys.readouterr().out
        # `batch start` is a command of its own; registry's list|describe|approve|reject are one argument's choices.
        assert usage.startswith(f"usage: mlops {' '.join(command)}") or (
            usage.startswith(f"usage: mlops {command[0]}") and re.search(rf"[{{,]{command[-1]}[,}}]", usage)), command


def test_the_smoke_test_body_is_a_row_the_demo_model_accepts(breast_cancer_dir: Path) -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    snippet = re.search(r'BODY=\$\(\$PY -c "(.+?)"\)', text, flags=re.DOTALL).group(1).replace("\\\n", "")
    body = json.loads(subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True,
                                     cwd=REPO).stdout)
    reader = FeatureReader(read_metadata(breast_cancer_dir).feature_schema)
    rows = reader.read([body["features"]], ("body", "features"), indexed=False)
    assert rows.X.shape == (1, 30)
