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
from inference.model_loader import NoModelPromoted
from inference.validation import FeatureReader
from mlops.cli import COMMANDS
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


# ------------------------------------------------------------------ one way to deploy

FENCED = re.compile(r"^```[a-z]*\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)
DEPLOY_SECTIONS = {"README.md": "## Deploying to an AWS account", "operations.md": "## Deploy"}


def fenced_lines(doc: Path) -> list[str]:
    return [line for block in FENCED.findall(doc.read_text()) for line in block.splitlines()]


def test_no_doc_shows_a_cdk_deploy_to_run() -> None:
    """`cdk deploy` by hand refuses several stacks, or with --all drops the live model: the docs show `make deploy`."""
    shown = [(doc.name, line) for doc in DOCS for line in fenced_lines(doc)
             if re.search(r"(^|[\s/])cdk deploy\b", line.split("#")[0])]
    assert not shown, shown


def test_the_deploy_the_docs_show_is_the_makefiles_and_the_cli_has_it() -> None:
    for name, heading in DEPLOY_SECTIONS.items():
        doc = REPO / name if name == "README.md" else REPO / "docs" / name
        section = doc.read_text().split(heading + "\n", 1)[1].split("\n## ", 1)[0]
        commands = [line.split("#")[0].strip() for block in FENCED.findall(section) for line in block.splitlines()]
        assert "make deploy" in commands, name
    recipe = re.search(r"^deploy:.*\n\t(.+)$", (REPO / "Makefile").read_text(), flags=re.MULTILINE).group(1)
    assert recipe.split()[1:4] == ["deploy", "--model-name", "$(MODEL_NAME)"] and recipe.split()[0].endswith("/mlops")
    assert "deploy" in COMMANDS and COMMANDS["deploy"].subcommand == "deploy"


def test_the_docs_quote_the_503_a_first_deploy_answers() -> None:
    """operations.md shows the body's reason word for word, for the configured model; the README says what it starts with."""
    model_name = json.loads((REPO / "cdk.json").read_text())["context"]["model_name"]
    reason = str(NoModelPromoted(model_name))
    quoted = [b.strip() for b in re.findall(r"^```text\n(.*?)^```", (REPO / "docs" / "operations.md").read_text(),
                                             flags=re.MULTILINE | re.DOTALL)]
    assert reason in quoted
    assert f"`{reason.split(' (')[0]} …`" in (REPO / "README.md").read_text()


def test_cdk_json_leaves_the_promoted_model_to_the_promotion_history() -> None:
    """A model key in cdk.json would be served by every deploy, whatever was promoted since."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    assert not {"model_package_arn", "model_version", "model_data_url", "model_sha256"} & set(context)
