"""What the image installs and what it strips: used by the Dockerfile and by bench/image_size.py alike.

Run in the image build as `python3 image_deps.py prune /var/task`.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

# Shipped by the pinned Lambda base image (its tag fixes their versions), so the image does not
# install them again: 26 MB that would only shadow the runtime's copies.
BASE_IMAGE_PACKAGES = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"})

# Never imported by the project at run time: the packages' test suites, onnxruntime's transformer
# and quantization tooling, numpy's C headers, type stubs.
PRUNE_DIRS = ("tests", "onnx/backend/test", "onnxruntime/transformers", "onnxruntime/quantization",
              "onnxruntime/tools", "numpy/_core/include", "sklearn/datasets/images")
PRUNE_SUFFIXES = (".pyi",)


def normalise(name: str) -> str:
    """PEP 503 project name."""
    return name.strip().lower().replace("_", "-").replace(".", "-")


def prune(root: Path) -> int:
    """Delete what the image never imports; returns the bytes removed."""
    removed = 0
    doomed = [p for p in root.rglob("*") if (p.is_dir() and any(p.match(pattern) for pattern in PRUNE_DIRS))
              or (p.is_file() and p.suffix in PRUNE_SUFFIXES)]
    for path in sorted(doomed, key=lambda p: len(p.parts)):
        if not path.exists():
            continue  # inside a directory already removed
        if path.is_dir():
            removed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
        else:
            removed += path.stat().st_size
            path.unlink()
    return removed


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "prune":
        sys.exit("usage: image_deps.py prune DIR")
    print(f"pruned {prune(Path(sys.argv[2])) / 2**20:.1f} MB")
