"""make lint's checkov skips: the skip file is well-formed and names real resources; the scan's verdicts on
canned checkov output (checkov itself is not needed: it lives in .venv-checkov, made by make lint)."""
from __future__ import annotations

import json
import sys
from fnmatch import fnmatchcase

import aws_cdk as cdk
import pytest

from stacks.checkov_scan import CHECK_ID, SKIPS, Finding, Skip, findings, judge, load_skips, main

STACK = "serverless-mlops-serving"
TEMPLATE = {"Resources": {
    "FnA1B2": {"Type": "AWS::Lambda::Function", "Metadata": {"aws:cdk:path": f"{STACK}/Inference/Function/Resource"}},
    "LogsC3": {"Type": "AWS::Logs::LogGroup", "Metadata": {"aws:cdk:path": f"{STACK}/Inference/Logs/Resource"}},
    "Bare": {"Type": "AWS::Logs::LogGroup"},
}}


def failed(check_id: str, logical_id: str, kind: str = "AWS::Lambda::Function") -> dict:
    return {"check_id": check_id, "check_name": f"the {check_id} check", "resource": f"{kind}.{logical_id}",
            "file_path": f"/cdk.out/{STACK}.template.json"}


def checkov_report(*failures: dict, parsing_errors: int = 0) -> dict:
    """checkov's JSON for one framework, as `--quiet` prints it (failed checks only)."""
    return {"check_type": "cloudformation", "results": {"failed_checks": list(failures)},
            "summary": {"passed": 7, "failed": len(failures), "skipped": 0, "parsing_errors": parsing_errors,
                        "resource_count": 3, "checkov_version": "3.3.30"}}


def finding(check_id: str, path: str) -> Finding:
    return Finding(check_id, "name", f"{STACK}.template.json", "AWS::Lambda::Function.X", path)


def test_the_skip_file_is_well_formed() -> None:
    skips = load_skips(SKIPS.read_text())  # raises on a missing reason, a bad id, an unknown key, an overlap
    assert skips
    for skip in skips:
        assert CHECK_ID.fullmatch(skip.id), skip.id
        assert len(skip.reason) >= 80 and skip.reason.endswith("."), f"{skip.id}: give the whole reason"
        assert skip.resources, f"{skip.id}: name the resources (patterns), not every resource"
    pairs = [(skip.id, pattern) for skip in skips for pattern in skip.patterns]
    assert len(pairs) == len(set(pairs))


@pytest.mark.slow
def test_every_resource_pattern_names_a_resource_of_the_default_deployment(default_app) -> None:
    # What `cdk synth` writes as aws:cdk:path (the tests' synthesis leaves that metadata out).
    paths = [c.node.path for c in default_app.app.node.find_all() if isinstance(c, cdk.CfnResource)]
    for skip in load_skips(SKIPS.read_text()):
        for pattern in skip.resources:
            assert any(fnmatchcase(path, pattern) for path in paths), f"{skip.id}: {pattern} names no resource"


@pytest.mark.parametrize(("text", "problem"), [
    ('[[skip]]\nid = "CKV_AWS_18"\nresources = ["*/A"]\n', "no reason"),
    ('[[skip]]\nid = "CKV_AWS_18"\nreason = "  "\n', "no reason"),
    ('[[skip]]\nid = "AWS_18"\nreason = "r"\n', "id must be"),
    ('[[skip]]\nid = "CKV_AZURE_1"\nreason = "r"\n', "id must be"),
    ('[[skip]]\nid = "CKV_AWS_18"\nreason = "r"\nresource = ["*/A"]\n', "unknown key 'resource'"),
    ('[[skip]]\nid = "CKV_AWS_18"\nreason = "r"\nresources = "*/A"\n', "list of non-empty patterns"),
    ('[[skip]]\nid = "CKV_AWS_18"\nreason = "r"\nresources = ["*/A"]\n'
     '[[skip]]\nid = "CKV_AWS_18"\nreason = "s"\nresources = ["*/B", "*/A"]\n', "overlaps an earlier skip"),
    ('[[skip]]\nid = "CKV_AWS_18"\nreason = "r"\n'
     '[[skip]]\nid = "CKV_AWS_18"\nreason = "s"\nresources = ["*/B"]\n', "overlaps an earlier skip"),
    ('[[skip]]\nid = "CKV_AWS_18"\nreason = "r"\nresources = ["*/B"]\n'
     '[[skip]]\nid = "CKV_AWS_18"\nreason = "s"\n', "overlaps an earlier skip"),
    ('[skips]\nid = "CKV_AWS_18"\n', "unknown top-level key 'skips'"),
])
def test_a_malformed_skip_file_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_skips(text)


def test_the_same_check_may_be_skipped_on_different_resources_for_different_reasons() -> None:
    skips = load_skips('[[skip]]\nid = "CKV2_AWS_5"\nreason = "r"\nresources = ["*/A"]\n'
                       '[[skip]]\nid = "CKV2_AWS_5"\nreason = "s"\nresources = ["*/B"]\n')
    assert [s.reason for s in skips] == ["r", "s"]


def test_findings_are_named_by_their_cdk_path() -> None:
    found, summary = findings([checkov_report(failed("CKV_AWS_117", "FnA1B2"),
                                              failed("CKV_AWS_158", "Bare", "AWS::Logs::LogGroup"))],
                              {f"{STACK}.template.json": TEMPLATE})
    assert [f.path for f in found] == [f"{STACK}/Inference/Function/Resource", "AWS::Logs::LogGroup.Bare"]
    assert found[0].template == f"{STACK}.template.json" and summary["resource_count"] == 3


def test_a_template_checkov_could_not_parse_fails_the_scan() -> None:
    with pytest.raises(ValueError, match="could not parse 1"):
        findings(checkov_report(parsing_errors=1), {})


def test_a_finding_no_skip_covers_fails_and_a_covered_one_does_not() -> None:
    lambda_vpc = Skip("CKV_AWS_117", "reason", ("*/Function/Resource",))
    covered = finding("CKV_AWS_117", f"{STACK}/Inference/Function/Resource")
    other_check = finding("CKV_AWS_116", f"{STACK}/Inference/Function/Resource")
    other_resource = finding("CKV_AWS_117", f"{STACK}/Inference/Provider/Resource")
    outcome = judge([lambda_vpc], [covered, other_check, other_resource])
    assert outcome.skipped == {lambda_vpc: [covered]}
    assert outcome.failed == [other_check, other_resource] and not outcome.ok


def test_a_skip_or_pattern_that_matches_no_finding_is_stale() -> None:
    half_used = Skip("CKV_AWS_158", "reason", ("*/Logs/Resource", "*/AccessLogs/Resource"))
    unused = Skip("CKV_AWS_27", "reason")
    outcome = judge([half_used, unused], [finding("CKV_AWS_158", f"{STACK}/Inference/Logs/Resource")])
    assert outcome.stale == [(half_used, "*/AccessLogs/Resource"), (unused, "*")]
    assert not outcome.failed and not outcome.ok
    assert judge([half_used], [finding("CKV_AWS_158", f"{STACK}/Inference/Logs/Resource"),
                               finding("CKV_AWS_158", f"{STACK}/Api/AccessLogs/Resource")]).ok


@pytest.mark.parametrize(("failures", "skips", "status", "says"), [
    ([failed("CKV_AWS_117", "FnA1B2")], 'resources = ["*/Function/Resource"]', 0, "1 skipped with a reason"),
    ([failed("CKV_AWS_117", "FnA1B2"), failed("CKV_AWS_116", "FnA1B2")], 'resources = ["*/Function/Resource"]', 1,
     f"FAILED CKV_AWS_116 the CKV_AWS_116 check: {STACK}/Inference/Function/Resource"),
    ([], 'resources = ["*/Function/Resource"]', 1, "STALE  CKV_AWS_117 on '*/Function/Resource'"),
])
def test_the_scan_runs_checkov_and_judges_its_report(tmp_path, capsys, failures, skips, status, says) -> None:
    template = tmp_path / f"{STACK}.template.json"
    template.write_text(json.dumps(TEMPLATE))
    skip_file = tmp_path / "skips.toml"
    skip_file.write_text(f'[[skip]]\nid = "CKV_AWS_117"\nreason = "no VPC"\n{skips}\n')
    # A stand-in for checkov: checks it got the templates, prints the canned report, exits 1 as checkov does.
    checkov = tmp_path / "checkov"
    checkov.write_text(f"#!{sys.executable}\nimport sys\nassert sys.argv[-2:] == ['--file', {str(template)!r}]\n"
                       f"print({json.dumps(json.dumps(checkov_report(*failures)))})\nsys.exit(1)\n")
    checkov.chmod(0o755)
    assert main([str(template), "--checkov", str(checkov), "--skips", str(skip_file)]) == status
    assert says in capsys.readouterr().out
