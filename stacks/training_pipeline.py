"""The training state machine: prepare → build the data set → validate → train (.sync) → evaluate → register,
every failure notified."""
from __future__ import annotations

import json

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from contracts import names
from stacks.config import Config
from stacks.lambda_step import lambda_step
from stacks.nag import acknowledge
from stacks.shared_buckets import SharedBuckets

DATA_VALIDATION_ERROR = "DataValidationError"
# Errors worth another attempt: the Lambda service's own (CDK's default retry covers the rest), SageMaker throttling.
SAGEMAKER_TRANSIENT = ["SageMaker.AmazonSageMakerException", "ThrottlingException"]
# The training job's hyperparameters (train.py flags), as the validate step returns them.
HYPERPARAMETERS = ("target", "model-name", "task", "categorical", "run-id", "algorithm", "hyperparameters", "search",
                   "search-seconds", "lineage")


class StateS3Location(tasks.S3Location):
    """An S3 URI read from the state, granting nothing.

    `S3Location.from_json_expression` grants the job role s3:GetObject/ListBucket/PutObject on '*'
    because it cannot know the bucket; the job role has its own grants, scoped by prefix, instead.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self._uri = sfn.JsonPath.string_at(path)

    def bind(self, task: tasks.ISageMakerTask, *, for_reading: bool | None = None,
             for_writing: bool | None = None) -> tasks.S3LocationConfig:
        return tasks.S3LocationConfig(uri=self._uri)


class TrainingPipeline(Construct):
    """The state machine and the SageMaker training job role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        buckets: SharedBuckets,
        image: ecr_assets.DockerImageAsset,
        build_dataset: lambda_.IFunction,
        validate: lambda_.IFunction,
        evaluate: lambda_.IFunction,
        register: lambda_.IFunction,
        topic: sns.ITopic,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._topic = topic
        self._functions = (build_dataset, validate, evaluate, register)
        self.job_role = self._job_role(buckets)

        failed = self._notify("NotifyFailure", "PipelineFailed", {
            "error": sfn.JsonPath.string_at("$.error.Error"),
            "cause": sfn.JsonPath.string_at("$.error.Cause"),
        }).next(sfn.Fail(self, "PipelineFailed", error_path="$.error.Error", cause_path="$.error.Cause"))
        notify_data_rejected = self._notify("NotifyDataRejected", "DataRejected", {
            "cause": sfn.JsonPath.string_at("$.error.Cause"),
        })
        data_rejected = notify_data_rejected.next(
            sfn.Fail(self, "DataRejected", error=DATA_VALIDATION_ERROR, cause_path="$.error.Cause"))

        prepare = self._prepare(buckets)
        run = {"model_name": sfn.JsonPath.string_at("$.model_name"), "run_id": sfn.JsonPath.string_at("$.run_id")}
        # The configured data plus the labelled production rows (when on): a new versioned data set with lineage.
        build_step = lambda_step(self, "BuildDataset", build_dataset, payload={
            **run,
            "data_uri": sfn.JsonPath.string_at("$.data_uri"),
            "target": sfn.JsonPath.string_at("$.target"),
            "task": sfn.JsonPath.string_at("$.task"),
        }, result_path="$.dataset")
        validate_step = lambda_step(self, "Validate", validate, payload={
            **run,
            "data_uri": sfn.JsonPath.string_at("$.dataset.data_uri"),
            "target": sfn.JsonPath.string_at("$.target"),
            "task": sfn.JsonPath.string_at("$.task"),
            "categorical": sfn.JsonPath.list_at("$.categorical"),
            # checked there, so a bad one fails the run before the training job starts
            "algorithm": sfn.JsonPath.string_at("$.algorithm"),
            "hyperparameters": sfn.JsonPath.object_at("$.hyperparameters"),
            "search_candidates": sfn.JsonPath.number_at("$.search_candidates"),
            "search_seconds": sfn.JsonPath.number_at("$.search_seconds"),
            # to the training job (a hyperparameter), then the model's metadata and registry entry
            "lineage": sfn.JsonPath.object_at("$.dataset.lineage"),
        }, result_path="$.validation")
        validate_step.add_catch(data_rejected, errors=[DATA_VALIDATION_ERROR], result_path="$.error")
        train = self._train(image)
        evaluate_step = lambda_step(self, "Evaluate", evaluate, payload={
            **run,
            "candidate_model_uri": sfn.JsonPath.string_at("$.training.model_uri"),
            "test_uri": sfn.JsonPath.string_at("$.validation.test_uri"),
            # the most recent labelled production rows, kept out of training (null when none)
            "recent_uri": sfn.JsonPath.string_at("$.dataset.recent_uri"),
            # for the run record
            "data_uri": sfn.JsonPath.string_at("$.dataset.data_uri"),
            "started_at": sfn.JsonPath.string_at("$$.Execution.StartTime"),
            "training_job_name": sfn.JsonPath.string_at("$.training.job_name"),
        }, result_path="$.evaluation")
        register_step = lambda_step(self, "Register", register, payload={
            **run,
            "candidate_model_uri": sfn.JsonPath.string_at("$.training.model_uri"),
            "evaluation": sfn.JsonPath.object_at("$.evaluation"),
        }, result_path="$.registration")
        registered = self._notify("NotifyRegistered", "ModelRegistered", {
            "model_package_arn": sfn.JsonPath.string_at("$.registration.model_package_arn"),
            "approval_status": sfn.JsonPath.string_at("$.registration.approval_status"),
        })
        rejected = self._notify("NotifyRejected", "ModelRejected", {
            "reason": sfn.JsonPath.string_at("$.evaluation.reason"),
            "decision_uri": sfn.JsonPath.string_at("$.evaluation.decision_uri"),
        })
        for step in (build_step, validate_step, train, evaluate_step, register_step, registered, rejected,
                     notify_data_rejected):
            step.add_catch(failed, result_path="$.error")

        definition = (
            prepare.next(build_step).next(validate_step).next(train).next(evaluate_step).next(
                sfn.Choice(self, "Passed?")
                .when(sfn.Condition.boolean_equals("$.evaluation.passed", True),
                      register_step.next(registered).next(sfn.Succeed(self, "Registered")))
                .otherwise(rejected.next(sfn.Succeed(self, "Rejected", comment="The candidate did not beat production")))
            )
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY,
                                       log_group_name=f"/aws/vendedlogs/states/{config.project_name}-training")
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=f"{config.project_name}-training",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.minutes(config.training_max_runtime_minutes + 60),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        topic.grant_publish(self.state_machine)
        self._acknowledge_role_findings()

    def _prepare(self, buckets: SharedBuckets) -> sfn.Pass:
        """Merge the execution input over the configured defaults; derive the job name and output location.

        JSONata, because JSONPath intrinsics cannot default a field to the execution name or clean a name.
        """
        c = self._config
        # task null: the validate step infers it.
        defaults = {"model_name": c.model_name, "data_uri": "__DATA_URI__", "target": c.target,
                    "task": c.task or None, "categorical": list(c.categorical), "algorithm": c.algorithm,
                    "hyperparameters": dict(c.hyperparameters), "search_candidates": c.search_candidates,
                    "search_seconds": c.search_budget_seconds}
        # The bucket name is a CloudFormation token: spliced into the expression, not JSON-encoded.
        defaults_json = json.dumps(defaults).replace('"__DATA_URI__"', f'"{buckets.data.uri(c.training_data_key)}"')
        artifacts = buckets.artifacts.bucket.bucket_name
        expression = (
            "{% ("
            f"$args := $merge([{defaults_json}, {{'run_id': $states.context.Execution.Name}}, $states.input]);"
            "$run := $string($args.run_id);"
            # The configured hyperparameters belong to the configured algorithm: an input choosing
            # another algorithm without its own hyperparameters starts from that algorithm's defaults.
            "$hp := $exists($states.input.hyperparameters) ? $states.input.hyperparameters"
            f" : ($args.algorithm = {json.dumps(c.algorithm)} ? {json.dumps(dict(c.hyperparameters))} : {{}});"
            # SageMaker job names: [A-Za-z0-9-], at most 63, alphanumeric at both ends.
            "$job := $replace($args.model_name & '-' & $run, /[^A-Za-z0-9]+/, '-');"
            "$merge([$args, {"
            "'run_id': $run,"
            "'hyperparameters': $hp,"
            "'training_job_name': $replace($substring($replace($job, /^-+/, ''), 0, 63), /-+$/, ''),"
            f"'output_uri': 's3://{artifacts}/{names.MODELS}' & $args.model_name & '/' & $run & '/'"
            "}])"
            ") %}"
        )
        return sfn.Pass.jsonata(self, "Prepare", outputs=expression,
                                comment="Input over the cdk.json defaults; run_id defaults to the execution name")

    def _train(self, image: ecr_assets.DockerImageAsset) -> tasks.SageMakerCreateTrainingJob:
        def channel(name: str) -> tasks.Channel:
            location = StateS3Location(f"$.validation.{name}_uri")
            return tasks.Channel(channel_name=name, content_type="text/csv", data_source=tasks.DataSource(
                s3_data_source=tasks.S3DataSource(s3_location=location, s3_data_type=tasks.S3DataType.S3_PREFIX)))

        c = self._config
        job = tasks.SageMakerCreateTrainingJob(
            self, "Train",
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            training_job_name=sfn.JsonPath.string_at("$.training_job_name"),
            role=self.job_role,
            algorithm_specification=tasks.AlgorithmSpecification(
                training_image=tasks.DockerImage.from_ecr_repository(image.repository, image.image_tag),
                training_input_mode=tasks.InputMode.FILE,
            ),
            input_data_config=[channel(part) for part in names.SPLIT_PARTS],
            output_data_config=tasks.OutputDataConfig(s3_output_location=StateS3Location("$.output_uri")),
            resource_config=tasks.ResourceConfig(
                instance_count=1,
                instance_type=ec2.InstanceType(c.training_instance_type.removeprefix("ml.")),
                volume_size=Size.gibibytes(10),
            ),
            stopping_condition=tasks.StoppingCondition(max_runtime=Duration.minutes(c.training_max_runtime_minutes)),
            # The container reads only its channels and writes /opt/ml/model: it needs no network.
            enable_network_isolation=True,
            # The validate step returns them as strings: the task it inferred, the categorical columns joined.
            hyperparameters={name: sfn.JsonPath.string_at(f"$.validation.hyperparameters.{name}")
                             for name in HYPERPARAMETERS},
            result_selector={
                "model_uri": sfn.JsonPath.string_at("$.ModelArtifacts.S3ModelArtifacts"),
                "job_name": sfn.JsonPath.string_at("$.TrainingJobName"),
            },
            result_path="$.training",
        )
        return job.add_retry(errors=SAGEMAKER_TRANSIENT, interval=Duration.seconds(30), max_attempts=3,
                             backoff_rate=2)

    def _notify(self, state_name: str, event: str, fields: dict) -> tasks.SnsPublish:
        message = {
            "event": event,
            "model_name": sfn.JsonPath.string_at("$.model_name"),
            "run_id": sfn.JsonPath.string_at("$.run_id"),
            "execution": sfn.JsonPath.execution_id,
            **fields,
        }
        return tasks.SnsPublish(
            self, state_name,
            topic=self._topic,
            subject=f"{self._config.project_name}: {event}",
            message=sfn.TaskInput.from_object(message),
            result_path=sfn.JsonPath.DISCARD,
        )

    def _job_role(self, buckets: SharedBuckets) -> iam.Role:
        """The training job reads its split, writes its model, pulls the image (granted by the task), logs."""
        model = self._config.model_name
        role = iam.Role(self, "TrainingJobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        description="SageMaker training jobs of the training pipeline")
        buckets.data.grant(role, names.splits_prefix(model), read=True, list_objects=True)
        buckets.artifacts.grant(role, names.models_prefix(model), write=True)
        stack = Stack.of(self)
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[stack.format_arn(service="logs", resource="log-group",
                                        resource_name="/aws/sagemaker/TrainingJobs:*",
                                        arn_format=ArnFormat.COLON_RESOURCE_NAME)],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
        ))
        acknowledge(
            role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",
            "SageMaker names its own log streams under /aws/sagemaker/TrainingJobs; PutMetricData is limited by "
            "the namespace condition and ECR's GetAuthorizationToken takes no resource.",
            "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:*",
            "Resource::*",
        )
        return role

    def _acknowledge_role_findings(self) -> None:
        """The state machine role: what the L2 tasks and logging grant, each needing a wildcard."""
        policy = self.state_machine.role.node.find_child("DefaultPolicy")
        functions = [f"Resource::<{Stack.of(self).get_logical_id(fn.node.default_child)}.Arn>:*"
                     for fn in self._functions]
        acknowledge(policy, "AwsSolutions-IAM5",
                    "LambdaInvoke grants the step functions' versions and aliases (<arn>:*), SageMaker's .sync "
                    "integration needs its training-job/* ARN and ListTags on '*', and Step Functions logging "
                    "and X-Ray actions take no resource.",
                    *functions,
                    "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*",
                    "Resource::*")
        acknowledge(policy, "AwsSolutions-IAM5",
                    "Publishing to the encrypted notification topic needs kms:GenerateDataKey* on its key only.",
                    "Action::kms:GenerateDataKey*")
