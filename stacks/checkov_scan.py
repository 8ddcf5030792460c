"""`make lint`'s checkov run over the synthesized templates, every skipped check listed with its reason.

checkov (its own virtualenv, .venv-checkov: its pins conflict with the project's) runs with every check on;
this module then applies stacks/checkov_skips.toml itself. checkov's own suppressions (--skip-check, or a
resource's Metadata) stop it from evaluating the check at all, so they could never tell a skip that no
longer hides anything; here the run fails on a finding no skip covers, on a malformed skip (no reason, an
id that is not a checkov AWS check, a duplicate), and on a skip or resource pattern that matches no finding.
Resources are named by their CDK path (aws:cdk:path), which, unlike a logical id, carries no hash.
Usage: python -m stacks.checkov_scan [--checkov PATH] [--skips FILE] [TEMPLATE ...]  (default cdk.out/*.template.json)
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SKIPS = Path(__file__).with_name("checkov_skips.toml")
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
CHECK_ID = re.compile(r"CKV2?_AWS_\d+")
# --skip-download: no guidelines or policies from the vendor's API (offline, the same result every time).
CHECKOV_ARGS = ("--framework", "cloudformation", "--compact", "--quiet", "--skip-download", "--output", "json")
SKIP_KEYS = {"id", "reason", "resources"}
EVERY_RESOURCE = "*"


@dataclass(frozen=True)
class Skip:
    """A check skipped on the resources whose CDK path matches one of `resources`, or on every resource."""

    id: str
    reason: str
    resources: tuple[str, ...] = ()

    @property
    def patterns(self) -> tuple[str, ...]:
        return self.resources or (EVERY_RESOURCE,)

    def matches(self, finding: Finding, pattern: str) -> bool:
        return finding.check_id == self.id and fnmatchcase(finding.path, pattern)


@dataclass(frozen=True)
class Finding:
    """A failed check on one resource."""

    check_id: str
    check_name: str
    template: str  # the template's file name
    resource: str  # checkov's Type.LogicalId
    path: str  # the CDK path; the resource when the template has no path metadata

    def __str__(self) -> str:
        return f"{self.check_id} {self.check_name}: {self.path} ({self.template}, {self.resource})"


@dataclass
class Outcome:
    failed: list[Finding] = field(default_factory=list)
    skipped: dict[Skip, list[Finding]] = field(default_factory=dict)
    stale: list[tuple[Skip, str]] = field(default_factory=list)  # (skip, the pattern no finding matches)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stale


def load_skips(text: str) -> list[Skip]:
    """The skips of a skip file; ValueError lists every problem in it."""
    data = tomllib.loads(text)
    problems = [f"unknown top-level key {key!r} (only [[skip]] tables)" for key in data if key != "skip"]
    skips: list[Skip] = []
    patterns: set[tuple[str, str]] = set()  # (id, pattern) of the skips so far
    for number, entry in enumerate(data.get("skip", []), 1):
        check_id, reason, resources = entry.get("id"), entry.get("reason"), entry.get("resources", [])
        where = f"skip {number} ({check_id})"
        problems += [f"{where}: unknown key {key!r}" for key in sorted(set(entry) - SKIP_KEYS)]
        if not isinstance(check_id, str) or not CHECK_ID.fullmatch(check_id):
            problems.append(f"{where}: id must be a checkov AWS check such as CKV_AWS_18 or CKV2_AWS_5")
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"{where}: no reason")
        if not isinstance(resources, list) or not all(isinstance(r, str) and r.strip() for r in resources):
            problems.append(f"{where}: resources must be a list of non-empty patterns")
            continue
        skip = Skip(str(check_id), str(reason).strip(), tuple(resources))
        # A check skipped on every resource is skipped once; a pattern is listed once per check.
        earlier = {pattern for i, pattern in patterns if i == skip.id}
        if EVERY_RESOURCE in earlier or (earlier and not skip.resources) or earlier & set(skip.resources):
            problems.append(f"{where}: overlaps an earlier skip of {skip.id}")
        patterns |= {(skip.id, pattern) for pattern in skip.patterns}
        skips.append(skip)
    if problems:
        raise ValueError("\n".join(problems))
    return skips


def findings(reports: Any, templates: Mapping[str, Mapping[str, Any]]) -> tuple[list[Finding], dict[str, Any]]:
    """The failed checks of checkov's JSON output (one report, or a list of them), and the CloudFormation summary.

    `templates`: file name → template, for the CDK paths. ValueError when checkov could not parse a template.
    """
    reports = reports if isinstance(reports, list) else [reports]
    found: list[Finding] = []
    summary: dict[str, Any] = {}
    for report in reports:
        if report.get("check_type") != "cloudformation":
            continue
        summary = report.get("summary", {})
        if summary.get("parsing_errors"):
            raise ValueError(f"checkov could not parse {summary['parsing_errors']} template(s)")
        for failed in report.get("results", {}).get("failed_checks", []):
            template = Path(failed["file_path"]).name
            logical_id = failed["resource"].split(".", 1)[-1]
            resource = templates.get(template, {}).get("Resources", {}).get(logical_id, {})
            found.append(Finding(failed["check_id"], failed["check_name"], template, failed["resource"],
                                 resource.get("Metadata", {}).get("aws:cdk:path", failed["resource"])))
    return found, summary


def judge(skips: Iterable[Skip], found: Iterable[Finding]) -> Outcome:
    """Which findings a skip covers (the first that does), which are left, which skip patterns match nothing."""
    skips, found = list(skips), list(found)
    outcome = Outcome(skipped={skip: [] for skip in skips})
    for finding in found:
        cover = next((s for s in skips if any(s.matches(finding, p) for p in s.patterns)), None)
        if cover is None:
            outcome.failed.append(finding)
        else:
            outcome.skipped[cover].append(finding)
    outcome.stale = [(skip, pattern) for skip in skips for pattern in skip.patterns
                     if not any(skip.matches(finding, pattern) for finding in found)]
    return outcome


def run_checkov(checkov: Path, templates: list[Path]) -> Any:
    """checkov's JSON report on the templates (exit 1 only says that some check failed)."""
    command = [str(checkov), *CHECKOV_ARGS, *(arg for t in templates for arg in ("--file", str(t)))]
    if not checkov.exists():
        raise SystemExit(f"no checkov at {checkov}: `make lint` sets up .venv-checkov from requirements-checkov.lock")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        if done.returncode not in (0, 1):
            raise ValueError(f"exit status {done.returncode}")
        return json.loads(done.stdout)
    except ValueError as error:
        raise SystemExit(f"checkov failed ({error}):\n{done.stderr[-3000:]}") from None


def report(outcome: Outcome, summary: Mapping[str, Any], skips_file: Path) -> str:
    skipped = sum(len(f) for f in outcome.skipped.values())
    lines = [f"checkov {summary.get('checkov_version', '?')}: {summary.get('resource_count', 0)} resources, "
             f"{summary.get('passed', 0)} checks passed, {len(outcome.failed) + skipped} failed: "
             f"{skipped} skipped with a reason in {skips_file.name}, {len(outcome.failed)} not"]
    lines += [f"  skipped  {skip.id:<12} {len(f):>3} resource(s)  {', '.join(skip.resources) or 'every resource'}"
              for skip, f in outcome.skipped.items()]
    lines += [f"FAILED {finding}" for finding in outcome.failed]
    lines += [f"STALE  {skip.id} on {pattern!r}: no finding matches it any more; remove it from {skips_file.name}"
              for skip, pattern in outcome.stale]
    if outcome.failed:
        lines.append(f"Fix each FAILED finding, or add a skip with its reason to {skips_file}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("templates", nargs="*", type=Path, help="default: cdk.out/*.template.json")
    parser.add_argument("--checkov", type=Path, default=CHECKOV)
    parser.add_argument("--skips", type=Path, default=SKIPS)
    args = parser.parse_args(argv)
    templates = args.templates or sorted((REPO / "cdk.out").glob("*.template.json"))
    if not templates:
        parser.error("no templates: run make synth first")
    try:
        skips = load_skips(args.skips.read_text())
    except ValueError as error:  # tomllib's TOMLDecodeError too
        print(f"{args.skips}: {error}", file=sys.stderr)
        return 1
    try:
        found, summary = findings(run_checkov(args.checkov, templates),
                                  {t.name: json.loads(t.read_text()) for t in templates})
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    if not summary.get("resource_count"):
        print("checkov checked no resources: are these CloudFormation templates?", file=sys.stderr)
        return 1
    outcome = judge(skips, found)
    print(report(outcome, summary, args.skips))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
