"""The pipeline step handlers are tested on the training tests' data sets, environment and Lambda context."""
from tests.training.conftest import aws_env, data_dir, lambda_context

__all__ = ["aws_env", "data_dir", "lambda_context"]
