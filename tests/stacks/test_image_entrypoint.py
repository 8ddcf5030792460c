"""The image's entry script: `train` runs the SageMaker entry module, anything else goes to the Lambda runtime."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.stacks.stack_helpers import REPO

SCRIPT = REPO / "lambda" / "entrypoint.sh"


@pytest.fixture
def shims(tmp_path: Path) -> dict[str, str]:
    """Stand-ins for python3 and /lambda-entrypoint.sh that print how they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, path in (("python3", bin_dir / "python3"), ("lambda", tmp_path / "lambda-entrypoint.sh")):
        path.write_text(f'#!/bin/sh\necho "{name} $(pwd) $*"\n')
        path.chmod(0o755)
    task_root = tmp_path / "task"
    task_root.mkdir()
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_ENTRYPOINT": str(tmp_path / "lambda-entrypoint.sh")}


def run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(["sh", str(SCRIPT), *args], env=env, capture_output=True, text=True, check=True,
                            cwd="/")
    return result.stdout.strip()


def test_sagemaker_train_argument_runs_the_training_entry(shims):
    assert run(shims, "train") == f"python3 {shims['LAMBDA_TASK_ROOT']} -m training.sagemaker_entry train"


def test_a_handler_argument_goes_to_the_lambda_runtime(shims):
    assert run(shims, "pipeline.app.validate_handler") == "lambda / pipeline.app.validate_handler"


def test_the_script_is_executable_in_the_repository():
    assert os.access(SCRIPT, os.X_OK)


IMAGE_PACKAGES = ("contracts", "training", "inference", "drift_check", "pipeline")


def test_the_image_holds_every_package_the_functions_import():
    """The Dockerfile copies each runtime package where pyproject.toml maps it, and .dockerignore lets it in."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name: project["package-dir"].get(name, name) for name in project["packages"]}
    dockerfile = (REPO / "Dockerfile").read_text()
    allowed = (REPO / ".dockerignore").read_text().splitlines()
    for package in IMAGE_PACKAGES:
        assert f"COPY {folders[package]}/ ${{LAMBDA_TASK_ROOT}}/{package}/" in dockerfile, package
        assert f"!{folders[package]}/" in allowed, package
