"""A state machine step that calls one of the project's functions and keeps its answer at a path of the state."""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

# Throttled by Lambda: worth another attempt (a function error is not; the step's Catch, if any, handles it).
LAMBDA_TRANSIENT = ["Lambda.TooManyRequestsException"]
RETRY_INTERVAL = Duration.seconds(5)


def lambda_step(scope: Construct, state_name: str, function: lambda_.IFunction, result_path: str,
                payload: dict | None = None, *, interval: Duration = RETRY_INTERVAL,
                max_attempts: int = 4) -> tasks.LambdaInvoke:
    """LambdaInvoke of `payload` (JSONPath fields end in ".$"), or of the whole state when None, whose
    response alone goes to `result_path`; retried with backoff when Lambda throttles."""
    task = tasks.LambdaInvoke(scope, state_name, lambda_function=function,
                              payload=sfn.TaskInput.from_object(payload) if payload is not None else None,
                              payload_response_only=True, result_path=result_path)
    return task.add_retry(errors=LAMBDA_TRANSIENT, interval=interval, max_attempts=max_attempts, backoff_rate=2)
