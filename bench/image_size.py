"""Check the image's dependency lock for Lambda (linux x86_64, CPython 3.12) and size it against a budget.

lambda/requirements-image.lock is what the Dockerfile installs with --no-deps: uv's resolution of
lambda/requirements.txt less the base image's own packages (`make lock`, --write-lock, regenerates it).
No Docker engine and no re-resolution here, so the check only turns red when the requirements or the lock
change: the lock must satisfy the requirements, installing exactly it for the platform must leave no
dependency of any installed distribution unmet, and the result, pruned as the Dockerfile prunes it
(stacks/image_deps.py, shared), must fit the budget.
Usage: python bench/image_size.py [--budget-mb 300] [--top 12] [--write-lock [--upgrade]]
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from importlib.metadata import PathDistribution
from pathlib import Path
from typing import NamedTuple

from packaging.requirements import InvalidRequirement, Requirement

from stacks.image_deps import BASE_IMAGE_PACKAGES, normalise, prune

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "lambda" / "requirements.txt"
LOCK = REPO / "lambda" / "requirements-image.lock"
TARGET = REPO / ".build" / "image-deps"
BUDGET_MB = 300.0
MB = 1024 * 1024
PYTHON_VERSION = "3.12"
# The runtime (Amazon Linux 2023) has glibc 2.34, so pip in the image takes manylinux wheels up to 2_34.
# pip's --platform does not expand a tag to the older ones, so they are listed (scikit-learn 1.9 ships
# manylinux_2_28 wheels only; manylinux2014 alone would not resolve it). uv's platform implies the older tags.
GLIBC_MINOR = 34
PLATFORMS = ["manylinux2014_x86_64", *(f"manylinux_2_{minor}_x86_64" for minor in range(17, GLIBC_MINOR + 1))]
UV_PLATFORM = f"x86_64-manylinux_2_{GLIBC_MINOR}"
# Markers are evaluated for the Lambda runtime, not for the machine running the check.
LAMBDA_MARKERS = {
    "implementation_name": "cpython", "implementation_version": f"{PYTHON_VERSION}.0", "os_name": "posix",
    "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_release": "",
    "platform_system": "Linux", "platform_version": "", "python_full_version": f"{PYTHON_VERSION}.0",
    "python_version": PYTHON_VERSION, "sys_platform": "linux",
}


class Dist(NamedTuple):
    """An installed distribution: its version and its Requires-Dist."""

    version: str
    requires: list[Requirement]


def read_requirements(path: Path) -> list[Requirement]:
    """The requirements of a requirements file (comments and uv's annotations dropped); ValueError names a bad line."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            found.append(Requirement(line))
        except InvalidRequirement as error:  # options such as -r or --index-url too: this check would miss them
            raise ValueError(f"{path.name}:{number}: cannot check {line!r}: {error}") from None
    return found


def applies(requirement: Requirement, extras: Iterable[str] = ()) -> bool:
    """Whether the requirement's marker holds on Lambda, with none or any of the given extras."""
    marker = requirement.marker
    return marker is None or any(marker.evaluate({**LAMBDA_MARKERS, "extra": extra}) for extra in ("", *extras))


def pinned(lock: list[Requirement]) -> dict[str, str]:
    """name → version of the lock's exact (==) pins."""
    found = {}
    for requirement in lock:
        specs = list(requirement.specifier)
        if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
            found[normalise(requirement.name)] = specs[0].version
    return found


def lock_problems(lock: list[Requirement]) -> list[str]:
    """What makes the lock unfit for `pip install --no-deps`: loose or repeated lines, base-image packages."""
    problems, seen = [], set()
    pins = pinned(lock)
    for requirement in lock:
        name = normalise(requirement.name)
        if name not in pins:
            problems.append(f"the lock line {str(requirement)!r} is not an exact name==version pin")
        if name in seen:
            problems.append(f"the lock pins {name} more than once")
        if name in BASE_IMAGE_PACKAGES:
            problems.append(f"the lock pins {name}, which the base image ships (BASE_IMAGE_PACKAGES)")
        seen.add(name)
    return problems


def unsatisfied(requirements: list[Requirement], pins: dict[str, str]) -> list[str]:
    """Direct requirements (for Lambda, outside the base image) that the lock leaves out or pins outside the specifier."""
    problems = []
    for requirement in requirements:
        name = normalise(requirement.name)
        if name in BASE_IMAGE_PACKAGES or not applies(requirement):
            continue
        if name not in pins:
            problems.append(f"{REQUIREMENTS.relative_to(REPO)} requires {requirement}, which the lock does not pin")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{REQUIREMENTS.relative_to(REPO)} requires {requirement}, but the lock pins {name}=={pins[name]}")
    return problems


def installed(target: Path) -> dict[str, Dist]:
    """name → version and requirements of every distribution installed in target."""
    found = {}
    for dist_info in target.glob("*.dist-info"):
        dist = PathDistribution(dist_info)
        found[normalise(dist.metadata["Name"])] = Dist(dist.version, [Requirement(r) for r in dist.requires or ()])
    return found


def dependencies(dist: Dist, extras: Iterable[str]) -> list[Requirement]:
    """The distribution's requirements that apply on Lambda with the given extras."""
    return [requirement for requirement in dist.requires if applies(requirement, extras)]


def requested_extras(requirements: list[Requirement], dists: dict[str, Dist]) -> dict[str, set[str]]:
    """Extras asked of each distribution by the requirements or by another installed one (to a fixed point)."""
    extras: dict[str, set[str]] = defaultdict(set)
    for requirement in requirements:
        if applies(requirement):
            extras[normalise(requirement.name)] |= requirement.extras
    changed = True
    while changed:
        changed = False
        for name, dist in dists.items():
            for requirement in dependencies(dist, extras[name]):
                new = requirement.extras - extras[normalise(requirement.name)]
                if new:
                    extras[normalise(requirement.name)] |= new
                    changed = True
    return extras


def unmet_dependencies(requirements: list[Requirement], dists: dict[str, Dist]) -> list[str]:
    """Dependencies of installed distributions (with their requested extras) that neither they nor the base image meet."""
    extras = requested_extras(requirements, dists)
    problems = []
    for name, dist in sorted(dists.items()):
        for requirement in dependencies(dist, extras[name]):
            needed = normalise(requirement.name)
            if needed in BASE_IMAGE_PACKAGES:
                continue
            if needed not in dists:
                problems.append(f"{name} {dist.version} requires {requirement}, which the lock does not pin")
            elif not requirement.specifier.contains(dists[needed].version, prereleases=True):
                problems.append(f"{name} {dist.version} requires {requirement}, "
                                f"but the lock pins {needed}=={dists[needed].version}")
    return problems


def unrequired(requirements: list[Requirement], dists: dict[str, Dist]) -> list[str]:
    """Installed distributions that nothing in the requirements leads to (a lock left after removing one)."""
    extras = requested_extras(requirements, dists)
    reached: set[str] = set()
    todo = [normalise(r.name) for r in requirements if applies(r)]
    while todo:
        name = todo.pop()
        if name in reached or name not in dists:
            continue
        reached.add(name)
        todo.extend(normalise(r.name) for r in dependencies(dists[name], extras[name]))
    return sorted(dists.keys() - reached)


def compile_lock(upgrade: bool) -> None:
    """Re-lock with uv for the Lambda platform, keeping the lock's pins unless upgrade; exits on failure."""
    if importlib.util.find_spec("uv") is None:
        sys.exit("error: uv is not installed in this Python: pip install -r requirements-dev.txt")
    command = [
        sys.executable, "-m", "uv", "pip", "compile", "--quiet",
        str(REQUIREMENTS.relative_to(REPO)), "--output-file", str(LOCK.relative_to(REPO)),
        "--python-platform", UV_PLATFORM, "--python-version", PYTHON_VERSION, "--only-binary", ":all:",
        "--custom-compile-command", "make lock",
        # The image takes these from the base image and installs the lock with --no-deps.
        *(arg for name in sorted(BASE_IMAGE_PACKAGES) for arg in ("--no-emit-package", name)),
        *(["--upgrade"] if upgrade else []),
    ]
    if subprocess.run(command, cwd=REPO, check=False).returncode != 0:
        sys.exit(f"error: uv could not lock {REQUIREMENTS.relative_to(REPO)} for {UV_PLATFORM} / CPython {PYTHON_VERSION}")
    print(f"wrote {LOCK.relative_to(REPO)} ({len(read_requirements(LOCK))} pins) with uv for {UV_PLATFORM}")


def install(target: Path) -> None:
    """pip install exactly the lock for the Lambda platform into a fresh directory; exits on failure."""
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir", "--no-deps",
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "--python-version", PYTHON_VERSION, "--implementation", "cp",
        "--only-binary=:all:", "--target", str(target), "-r", str(LOCK),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        sys.exit(f"error: {LOCK.relative_to(REPO)} does not install for linux x86_64 / CPython {PYTHON_VERSION}")


def package_sizes(target: Path) -> dict[str, int]:
    """Bytes per distribution, from each *.dist-info/RECORD (files outside RECORD go to '(unrecorded)')."""
    sizes: dict[str, int] = defaultdict(int)
    recorded: set[Path] = set()
    for record in target.glob("*.dist-info/RECORD"):
        name = _distribution_name(record.parent)
        for line in record.read_text().splitlines():
            path = target / line.rsplit(",", 2)[0]
            if path.is_file() and path not in recorded:
                recorded.add(path)
                sizes[name] += path.stat().st_size
    for path in target.rglob("*"):
        if path.is_file() and path not in recorded:
            sizes["(unrecorded)"] += path.stat().st_size
    return dict(sizes)


def _distribution_name(dist_info: Path) -> str:
    """Normalised project name (PEP 503) from the METADATA Name field."""
    for line in (dist_info / "METADATA").read_text(errors="replace").splitlines():
        if line.startswith("Name:"):
            return normalise(line.split(":", 1)[1])
    return normalise(dist_info.name.split("-")[0])


def report(sizes: dict[str, int], pruned: int, budget_mb: float, top: int) -> bool:
    """Print the totals and the largest packages; True when what the image holds is within the budget."""
    total = sum(sizes.values()) / MB
    print(f"installed {LOCK.relative_to(REPO)} for linux x86_64 / CPython {PYTHON_VERSION} into "
          f"{TARGET.relative_to(REPO)}: {total + pruned / MB:.1f} MB")
    print(f"  left to the base image, not in the lock: {', '.join(sorted(BASE_IMAGE_PACKAGES))}")
    print(f"  pruned as in the Dockerfile (test suites, tooling, headers, stubs): {pruned / MB:.1f} MB")
    print(f"in the image: {total:.1f} MB in {len(sizes)} distributions (budget {budget_mb:.0f} MB)")
    print(f"largest {top}:")
    for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:top]:
        print(f"  {size / MB:8.1f} MB  {name}")
    if total > budget_mb:
        print(f"OVER the {budget_mb:.0f} MB budget by {total - budget_mb:.1f} MB", file=sys.stderr)
        return False
    print(f"OK: within the {budget_mb:.0f} MB budget ({budget_mb - total:.1f} MB to spare)")
    return True


def failed(problems: list[str]) -> bool:
    """Print each problem and the remedy; True when there were any."""
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print(f"{LOCK.relative_to(REPO)} does not fit {REQUIREMENTS.relative_to(REPO)}: run `make lock`",
              file=sys.stderr)
    return bool(problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-mb", type=float, default=BUDGET_MB, help="fail above this many MB")
    parser.add_argument("--top", type=int, default=12, help="how many of the largest packages to list")
    parser.add_argument("--write-lock", action="store_true", help=f"re-lock {LOCK.relative_to(REPO)} with uv first")
    parser.add_argument("--upgrade", action="store_true", help="with --write-lock: let every pin move to the newest")
    args = parser.parse_args(argv)
    if args.upgrade and not args.write_lock:
        parser.error("--upgrade only applies with --write-lock")
    if args.write_lock:
        compile_lock(args.upgrade)
    requirements, lock = read_requirements(REQUIREMENTS), read_requirements(LOCK)
    if failed(lock_problems(lock) + unsatisfied(requirements, pinned(lock))):
        return 1
    print(f"{LOCK.relative_to(REPO)} satisfies {REQUIREMENTS.relative_to(REPO)} ({len(lock)} pins)")
    install(TARGET)
    dists = installed(TARGET)
    if failed(unmet_dependencies(requirements, dists)):
        return 1
    print(f"every dependency of the {len(dists)} installed distributions is in the lock or the base image")
    for name in unrequired(requirements, dists):
        print(f"note: the lock pins {name}, which nothing in {REQUIREMENTS.name} needs; `make lock` drops it")
    pruned = prune(TARGET)  # before sizing: the image holds the pruned tree
    return 0 if report(package_sizes(TARGET), pruned, args.budget_mb, args.top) else 1


if __name__ == "__main__":
    sys.exit(main())
