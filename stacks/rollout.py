"""Model rollouts through CloudFormation: promote an approved version, roll back, stop a canary, show what is live.

    mlops promote  --model-name X --version N [--dry-run]
    mlops rollback --model-name X [--stop] [--canary] [--dry-run]
    mlops status   --model-name X
    mlops deploy   --model-name X [--dry-run]

`deploy` deploys every stack (new code, new configuration) keeping the live model: a deploy
without the model context would put the function back to "no model promoted".

Promotion deploys the serving and monitoring stacks with the registry entry as CDK context,
so CloudFormation publishes a new function version and CodeDeploy shifts the `live` alias by
canary, rolling back by itself on alarms. Rollback is the same deploy with the previously
promoted version; `--stop` stops the running CodeDeploy deployment instead (its alias goes
back at once). The history is a JSON file beside the artifacts:
s3://<artifacts bucket>/models/<model name>/promotions.json (versioned bucket, conditional writes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import names
from contracts.env import Var
from contracts.names import Output
from contracts.promotions import History, PromotionError, history_location, load_history, save_history
from training import registry
from training.registry import APPROVED, ModelVersion, RegistryError

REPO_ROOT = Path(__file__).resolve().parent.parent
CDK = "node_modules/.bin/cdk"
# CodeDeploy statuses of a deployment that is still shifting (or about to shift) traffic.
ACTIVE_STATUSES = ["Created", "Queued", "InProgress", "Baking", "Ready"]

Runner = Callable[[list[str]], int]


@dataclass
class Clients:
    """The AWS clients a rollout uses (tests pass moto-backed ones)."""

    sagemaker: Any
    s3: Any
    cloudformation: Any
    codedeploy: Any
    lambda_: Any

    @classmethod
    def create(cls) -> Clients:
        import boto3

        return cls(*(boto3.client(name) for name in ("sagemaker", "s3", "cloudformation", "codedeploy", "lambda")))


# ------------------------------------------------------------------ the deploy command (pure)


def model_context(version: ModelVersion) -> dict[str, str]:
    """The CDK context keys (stacks/config.py) that put a registry version into the stacks."""
    return {
        "model_package_arn": version.arn,
        "model_version": str(version.version),
        "model_data_url": version.model_data_url,
        "model_sha256": version.sha256,
    }


def deploy_command(stacks: Sequence[str], context: Mapping[str, str], *, cdk: str = CDK) -> list[str]:
    """`cdk deploy` of these stacks with the context values; no prompt (CodeDeploy is the safety net).

    Not --exclusively: the stacks they depend on (storage holds the image asset) deploy too, as
    no-ops unless the code changed, so a new image is always published before a function uses it.
    """
    command = [cdk, "deploy", *stacks]
    for key, value in context.items():
        command += ["-c", f"{key}={value}"]
    return command + ["--require-approval", "never"]


def stack_names(project_name: str) -> list[str]:
    """The stacks a promotion deploys, serving first (stacks/app_stacks.py names them with contracts.names)."""
    return [names.stack_name(project_name, stack) for stack in names.ROLLOUT_STACKS]


def project_name(cdk_json: Path = REPO_ROOT / "cdk.json") -> str:
    try:
        return json.loads(cdk_json.read_text())["context"].get("project_name", names.DEFAULT_PROJECT)
    except (OSError, ValueError, KeyError):
        return names.DEFAULT_PROJECT


def run_cdk(command: list[str]) -> int:
    """Run the CDK CLI from the repository root (where cdk.json is)."""
    env = os.environ | {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return subprocess.run(command, cwd=REPO_ROOT, env=env, check=False).returncode


# ------------------------------------------------------------------ promotion history (contracts.promotions)


def history_for_model(clients: Clients, model_name: str) -> History:
    """The history, found through the registry (its artifacts bucket)."""
    latest = registry.latest_approved(clients.sagemaker, model_name)
    if latest is None:
        raise PromotionError(f"model {model_name!r} has no approved version: nothing was promoted")
    return load_history(clients.s3, *history_location(latest.model_data_url, model_name))


# ------------------------------------------------------------------ registry, stacks, CodeDeploy


def approved_version(clients: Clients, model_name: str, version: int) -> ModelVersion:
    """The registry entry, which must be Approved and name a tarball and its sha256."""
    entry = registry.resolve(clients.sagemaker, model_name, version)
    if entry.approval_status != APPROVED:
        raise PromotionError(
            f"model {model_name!r} version {version} is {entry.approval_status}, not {APPROVED}: approve it first "
            f"(mlops registry approve --model-name {model_name} --version {version})")
    if not entry.model_data_url or not entry.sha256:
        raise PromotionError(f"model {model_name!r} version {version} has no model_data_url/artifact_sha256 in the registry")
    return entry


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    from botocore.exceptions import ClientError

    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        raise PromotionError(f"stack {stack} is not deployed ({exc.response['Error']['Message']})") from exc
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def _output(outputs: Mapping[str, str], key: str, stack: str) -> str:
    if key not in outputs:
        raise PromotionError(f"stack {stack} has no output {key}: deploy it with the current stacks/serving_stack.py")
    return outputs[key]


def active_deployments(codedeploy: Any, application: str, group: str) -> list[str]:
    """Deployments of the group that are still shifting traffic."""
    pages = codedeploy.get_paginator("list_deployments").paginate(
        applicationName=application, deploymentGroupName=group, includeOnlyStatuses=ACTIVE_STATUSES)
    return [d for page in pages for d in page["deployments"]]


def stop_deployments(codedeploy: Any, deployment_ids: Sequence[str]) -> list[dict[str, str]]:
    """Stop each deployment and have CodeDeploy move the alias back to the previous version."""
    return [{"deployment_id": d, **{k: v for k, v in codedeploy.stop_deployment(deploymentId=d, autoRollbackEnabled=True).items()
                                   if k in ("status", "statusMessage")}}
            for d in deployment_ids]


def live_alias(clients: Clients, function_name: str) -> dict[str, Any]:
    """What `live` points at, the model each version serves, and a canary's traffic split."""
    alias = clients.lambda_.get_alias(FunctionName=function_name, Name=names.ALIAS)
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}

    def model_of(version: str) -> dict[str, str]:
        env = clients.lambda_.get_function_configuration(FunctionName=function_name, Qualifier=version)
        variables = (env.get("Environment") or {}).get("Variables") or {}
        return {"function_version": version, "model_version": variables.get(Var.MODEL_VERSION, ""),
                "model_package_arn": variables.get(Var.MODEL_PACKAGE_ARN, "")}

    return {"function": function_name, "alias": names.ALIAS, "primary": model_of(alias["FunctionVersion"]),
            "canary": [model_of(v) | {"weight": w} for v, w in weights.items()]}


# ------------------------------------------------------------------ the commands


def verify_artifact(s3: Any, entry: ModelVersion) -> None:
    """Open the tarball as the function will (registry sha256, then the manifest) before anything is deployed."""
    import tempfile

    from botocore.exceptions import ClientError

    from contracts.artifact import ArtifactError
    from contracts.artifact_fetch import boto3_download, fetch_artifact

    with tempfile.TemporaryDirectory(prefix="promote-") as tmp:
        try:
            fetch_artifact(entry.model_data_url, Path(tmp) / "model", boto3_download(s3), expected_sha256=entry.sha256)
        except (ArtifactError, ClientError, ValueError) as exc:  # ValueError: not an s3:// URL
            raise PromotionError(f"model {entry.model_name!r} version {entry.version} cannot be served, "
                                 f"so it is not deployed: {exc}") from exc


def promote(clients: Clients, model_name: str, version: int, stacks: Sequence[str], *, dry_run: bool,
            runner: Runner, action: str = "promote", extra_context: Mapping[str, str] | None = None,
            history: History | None = None) -> dict[str, Any]:
    """Check the approved version's artifact, deploy the stacks with it, then record it in the history."""
    entry = approved_version(clients, model_name, version)
    verify_artifact(clients.s3, entry)
    command = deploy_command(stacks, {**model_context(entry), **(extra_context or {})})
    result: dict[str, Any] = {"action": action, "model_name": model_name, "version": version, "command": command}
    if dry_run:
        return result | {"dry_run": True}
    history = history or load_history(clients.s3, *history_location(entry.model_data_url, model_name))
    code = runner(command)
    if code != 0:
        raise PromotionError(f"cdk deploy failed (exit {code}); CloudFormation/CodeDeploy rolled the stacks back, "
                             "so the live version is unchanged: see the stack events and the deployment's alarms")
    result["recorded"] = history.record(action, entry)
    save_history(clients.s3, history)
    return result


def rollback(clients: Clients, model_name: str, stacks: Sequence[str], *, dry_run: bool, runner: Runner,
             canary: bool) -> dict[str, Any]:
    """Deploy the version promoted before the live one (all at once unless `canary`)."""
    history = history_for_model(clients, model_name)
    target = history.rollback_target()
    extra = {} if canary else {"canary": "AllAtOnce"}  # back to a known-good version without waiting
    return promote(clients, model_name, target, stacks, dry_run=dry_run, runner=runner, action="rollback",
                   extra_context=extra, history=history)


def served_model_version(clients: Clients, serving_stack: str) -> str:
    """The model version the deployed function serves; "" when no stack or no model is deployed."""
    try:
        outputs = stack_outputs(clients.cloudformation, serving_stack)
    except PromotionError:
        return ""
    if Output.FUNCTION_NAME not in outputs:
        return ""
    from botocore.exceptions import ClientError

    try:
        return live_alias(clients, outputs[Output.FUNCTION_NAME])["primary"].get("model_version", "")
    except ClientError:  # the function or its alias is gone: nothing is served
        return ""


def deploy_keeping_live(clients: Clients, model_name: str, *, dry_run: bool, runner: Runner,
                        serving_stack: str) -> dict[str, Any]:
    """Deploy all stacks with the live version's context (none promoted yet: no model context)."""
    try:
        live = history_for_model(clients, model_name).live()
    except PromotionError as exc:
        serving = served_model_version(clients, serving_stack)
        if serving:  # e.g. a mistyped --model-name: deploying without the model would take it out of service
            raise PromotionError(f"{exc}, yet {serving_stack} serves model version {serving}: "
                                 "check --model-name (and the region) before deploying") from exc
        live = []
    context = model_context(approved_version(clients, model_name, live[-1])) if live else {}
    command = deploy_command(["--all"], context)
    result = {"action": "deploy", "model_name": model_name, "version": live[-1] if live else None, "command": command}
    if dry_run:
        return result | {"dry_run": True}
    code = runner(command)
    if code != 0:
        raise PromotionError(f"cdk deploy failed (exit {code}); see the stack events")
    return result


def stop(clients: Clients, serving_stack: str, *, dry_run: bool) -> dict[str, Any]:
    """Stop the in-progress canary; CodeDeploy points `live` back at the previous version."""
    outputs = stack_outputs(clients.cloudformation, serving_stack)
    application = _output(outputs, Output.DEPLOYMENT_APPLICATION, serving_stack)
    group = _output(outputs, Output.DEPLOYMENT_GROUP, serving_stack)
    active = active_deployments(clients.codedeploy, application, group)
    if not active:
        raise PromotionError(f"no deployment of {application}/{group} is in progress: "
                             "to go back to the previous model, run rollback without --stop")
    if dry_run:
        return {"action": "stop", "deployments": active, "dry_run": True}
    return {"action": "stop", "deployments": stop_deployments(clients.codedeploy, active)}


def status(clients: Clients, model_name: str, serving_stack: str) -> dict[str, Any]:
    """The live alias (from AWS), the promotion history, and deployments in progress."""
    history = history_for_model(clients, model_name)
    result: dict[str, Any] = {"model_name": model_name, "promoted": history.live(),
                              "history": history.entries[-10:], "history_uri": f"s3://{history.bucket}/{history.key}"}
    try:
        outputs = stack_outputs(clients.cloudformation, serving_stack)
    except PromotionError as exc:
        return result | {"live": None, "note": str(exc)}
    result["live"] = live_alias(clients, _output(outputs, Output.FUNCTION_NAME, serving_stack))
    if Output.DEPLOYMENT_APPLICATION in outputs and Output.DEPLOYMENT_GROUP in outputs:
        result["deployments_in_progress"] = active_deployments(clients.codedeploy, outputs[Output.DEPLOYMENT_APPLICATION],
                                                               outputs[Output.DEPLOYMENT_GROUP])
    return result


EXAMPLES = {
    "promote": "mlops promote --model-name breast-cancer --version 3 --dry-run",
    "rollback": "mlops rollback --model-name breast-cancer            # the previous version, all at once\n"
                "  mlops rollback --model-name breast-cancer --stop     # stop the canary in progress",
    "status": "mlops status --model-name breast-cancer",
    "deploy": "mlops deploy --model-name breast-cancer                # new code or configuration, same model",
}


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog or "mlops", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("promote", "deploy an Approved registry version"),
                       ("rollback", "deploy the previously promoted version, or --stop the running canary"),
                       ("status", "show the live version, canary weights and the promotion history"),
                       ("deploy", "deploy all stacks (new code or configuration), keeping the live model")):
        p = sub.add_parser(name, help=text, description=text, epilog=f"example:\n  {EXAMPLES[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--model-name", required=True)
        p.add_argument("--project-name", default=None, help="stack name prefix (default: cdk.json project_name)")
        if name == "promote":
            p.add_argument("--version", type=int, required=True, help="model package version in the registry")
        if name == "rollback":
            p.add_argument("--stop", action="store_true", help="stop the in-progress CodeDeploy deployment instead")
            p.add_argument("--canary", action="store_true", help="roll back by canary too (default: all at once)")
        if name != "status":
            p.add_argument("--dry-run", action="store_true", help="print what would run; change nothing")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None, *, clients: Clients | None = None,
         runner: Runner = run_cdk) -> int:
    """Run one command; problems print to stderr and return 1."""
    args = build_parser(prog).parse_args(argv)
    stacks = stack_names(args.project_name or project_name())
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        clients = clients or Clients.create()
        if args.command == "promote":
            result = promote(clients, args.model_name, args.version, stacks, dry_run=args.dry_run, runner=runner)
        elif args.command == "rollback" and args.stop:
            result = stop(clients, stacks[0], dry_run=args.dry_run)
        elif args.command == "deploy":
            result = deploy_keeping_live(clients, args.model_name, dry_run=args.dry_run, runner=runner,
                                         serving_stack=stacks[0])
        elif args.command == "rollback":
            result = rollback(clients, args.model_name, stacks, dry_run=args.dry_run, runner=runner, canary=args.canary)
        else:
            result = status(clients, args.model_name, stacks[0])
    except (PromotionError, RegistryError, ClientError, BotoCoreError) as exc:
        print(f"promote {args.command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
