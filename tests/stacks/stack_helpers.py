"""Reading synthesized templates: resources by type, state machine definitions, dashboards, IAM statements."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

REPO = Path(__file__).resolve().parents[2]


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    """Logical id → resource (Type, Properties, ...) of one CloudFormation type."""
    return template.find_resources(kind)


def only(template: Template, kind: str) -> dict[str, Any]:
    """The Properties of the single resource of a type."""
    found = resources(template, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return next(iter(found.values())).get("Properties", {})


def flatten(value: Any) -> str:
    """A CloudFormation string value (plain or Fn::Join) as text, with every token as <token>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(flatten(p) for p in parts)
    return "<token>"


def state_machine_definition(template: Template) -> dict[str, Any]:
    """The (single) state machine's definition, parsed."""
    return json.loads(flatten(only(template, "AWS::StepFunctions::StateMachine")["DefinitionString"]))


def dashboard_body(template: Template) -> dict[str, Any]:
    return json.loads(flatten(only(template, "AWS::CloudWatch::Dashboard")["DashboardBody"]))


def policy_statements(template: Template) -> list[tuple[str, dict[str, Any]]]:
    """(policy logical id, statement) for every inline IAM policy of the template."""
    found = []
    for logical_id, policy in resources(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            found.append((logical_id, statement))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    """Statements of the inline policies attached to the role whose logical id starts with role_prefix."""
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        roles = [r.get("Ref", "") for r in policy["Properties"].get("Roles", [])]
        if any(r.startswith(role_prefix) for r in roles):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    assert statements, f"no policy attached to a role {role_prefix}*"
    return statements


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in as_list(s["Action"])}


def function_by_command(template: Template, command: str) -> dict[str, Any]:
    """The Properties of the image function whose CMD is `command`."""
    matches = [f["Properties"] for f in resources(template, "AWS::Lambda::Function").values()
               if f["Properties"].get("ImageConfig", {}).get("Command") == [command]]
    assert len(matches) == 1, f"expected one function running {command}, found {len(matches)}"
    return matches[0]


def with_refs(value: Any) -> str:
    """Like `flatten`, but a reference keeps its target: <LogicalId.Arn>, <Ref LogicalId>, <DataBucketArn>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(with_refs(p) for p in parts)
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Ref" in value:
        return f"<Ref {value['Ref']}>"
    if "Fn::GetStackOutput" in value:
        return f"<{value['Fn::GetStackOutput']['OutputName']}>"
    return "<token>"


def definition_of(template) -> dict[str, Any]:
    return json.loads(with_refs(only(template, "AWS::StepFunctions::StateMachine")["DefinitionString"]))


def s3_grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """S3 action → {"<BucketOutput>/prefix*"} (object actions) or {"<BucketOutput>?prefix=..."} (ListBucket)."""
    grants: dict[str, set[str]] = {}
    for s in statements:
        for action in (a for a in as_list(s["Action"]) if a.startswith("s3:")):
            for resource in as_list(s["Resource"]):
                target = with_refs(resource)
                if action == "s3:ListBucket":
                    prefixes = s.get("Condition", {}).get("StringLike", {}).get("s3:prefix", ["<any>"])
                    grants.setdefault(action, set()).update(f"{target}?prefix={p}" for p in prefixes)
                else:
                    grants.setdefault(action, set()).add(target)
    return grants
