"""The five stacks wired together: the one place that knows which stack receives what."""
from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stage, Tags

from contracts import names
from stacks.batch_stack import BatchStack
from stacks.config import Config
from stacks.monitoring_stack import MonitoringStack
from stacks.serving_stack import ServingStack
from stacks.storage_stack import StorageStack
from stacks.training_stack import TrainingStack


@dataclass(frozen=True)
class AppStacks:
    storage: StorageStack
    training: TrainingStack
    serving: ServingStack
    monitoring: MonitoringStack
    batch: BatchStack


def build_stacks(scope: Stage, config: Config) -> AppStacks:
    """Storage first (stateful, retained), then the stateless stacks that receive its resources."""
    prefix = config.project_name
    storage = StorageStack(scope, names.stack_name(prefix, names.STORAGE), config=config,
                           description="Buckets, model registry group and the image (retained on delete)")
    training = TrainingStack(scope, names.stack_name(prefix, names.TRAINING), config=config, storage=storage,
                             description="Training pipeline: build the data set, validate, SageMaker training, evaluate, register")
    serving = ServingStack(scope, names.stack_name(prefix, names.SERVING), config=config, storage=storage,
                           description="Prediction API, inference function, canary deployments, request capture, ground-truth labels")
    batch = BatchStack(scope, names.stack_name(prefix, names.BATCH_SCORING), config=config, storage=storage,
                       description="Batch scoring: input of any size scored on a Step Functions Distributed Map")
    monitoring = MonitoringStack(scope, names.stack_name(prefix, names.MONITORING), config=config, storage=storage,
                                 training=training, serving=serving, batch=batch,
                                 description="Drift and model-quality checks, alarms, dashboard, alarm-triggered retraining")
    Tags.of(scope).add("project", prefix)
    Tags.of(scope).add("model", config.model_name)
    return AppStacks(storage, training, serving, monitoring, batch)
