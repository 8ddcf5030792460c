# One image for the SageMaker training job, the pipeline steps, the prediction API, the drift check and batch scoring,
# so the scikit-learn that pickles a model is the one that unpickles it. Build context: the repository
# root, narrowed by .dockerignore (an allow-list). CDK builds it for linux/amd64.
FROM public.ecr.aws/lambda/python:3.12.2026.10.03.13

# Dependencies first: this layer is reused until the lock changes. The lock is uv's resolution of
# lambda/requirements.txt for linux x86_64 / CPython 3.12 (`make lock`) less what the pinned base image
# ships (boto3, botocore, …), so --no-deps installs exactly it; `make image-check` (bench/image_size.py)
# checks it satisfies the requirements and leaves no dependency unmet. stacks/image_deps.py then strips
# what is never imported (test suites, tooling, headers); bench/image_size.py sizes the same result.
COPY lambda/requirements-image.lock stacks/image_deps.py /tmp/build/
RUN pip install --no-cache-dir --no-compile --no-deps --target "${LAMBDA_TASK_ROOT}" -r /tmp/build/requirements-image.lock \
    && python3 /tmp/build/image_deps.py prune "${LAMBDA_TASK_ROOT}" \
    && rm -rf /tmp/build

COPY contracts/ ${LAMBDA_TASK_ROOT}/contracts/
COPY training/ ${LAMBDA_TASK_ROOT}/training/
COPY lambda/inference/ ${LAMBDA_TASK_ROOT}/inference/
COPY lambda/drift_check/ ${LAMBDA_TASK_ROOT}/drift_check/
COPY lambda/pipeline/ ${LAMBDA_TASK_ROOT}/pipeline/
COPY lambda/batch_scoring/ ${LAMBDA_TASK_ROOT}/batch_scoring/
COPY lambda/entrypoint.sh /entrypoint.sh

# /var/task is read-only on Lambda: compile everything now, with hash-checked-never .pyc files that stay
# valid whatever the file times, so no cold start compiles.
RUN chmod 755 /entrypoint.sh \
    && python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash "${LAMBDA_TASK_ROOT}"

ENTRYPOINT ["/entrypoint.sh"]
CMD ["inference.app.handler"]
