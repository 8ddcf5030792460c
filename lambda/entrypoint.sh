#!/bin/sh
# The image's entry point. SageMaker starts a training container with the argument `train`;
# Lambda passes the handler (the image CMD, overridden per function).
set -eu
if [ "${1:-}" = "train" ]; then
    cd "${LAMBDA_TASK_ROOT:-/var/task}"
    exec python3 -m training.sagemaker_entry "$@"
fi
# LAMBDA_ENTRYPOINT exists for tests; the base image provides /lambda-entrypoint.sh.
exec "${LAMBDA_ENTRYPOINT:-/lambda-entrypoint.sh}" "$@"
