"""The serving function's Firehose streams into the capture bucket: JSON lines, hourly partitions, GZIP.

One construct, two streams: request capture (capture/<model>/, read by the drift check) and the labels of
POST /feedback (labels/<model>/feedback/, read by the model-quality check).
"""
from __future__ import annotations

from aws_cdk import Duration, Size, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from constructs import Construct

from contracts import names
from stacks.nag import acknowledge
from stacks.shared_buckets import BucketRef

# Firehose renders the partition; the readers list <prefix>YYYY/MM/DD/HH/.
TIME_PARTITION = "!{timestamp:yyyy/MM/dd/HH}/"
ERROR_PARTITION = "!{firehose:error-output-type}/" + TIME_PARTITION


class LinesStream(Construct):
    """Direct-put delivery stream (encrypted at rest) into s3://<capture>/<prefix>YYYY/MM/DD/HH/, GZIP.

    errors_prefix: where Firehose puts what it could not deliver, outside `prefix` so no reader takes it for data.
    """

    def __init__(self, scope: Construct, construct_id: str, *, bucket: BucketRef, prefix: str,
                 errors_prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.prefix = prefix
        self.delivery_stream = firehose.DeliveryStream(
            self, "Stream",
            encryption=firehose.StreamEncryption.aws_owned_key(),
            destination=firehose.S3Bucket(
                bucket.bucket,
                data_output_prefix=prefix + TIME_PARTITION,
                error_output_prefix=errors_prefix + ERROR_PARTITION,
                buffering_interval=Duration.seconds(60),
                buffering_size=Size.mebibytes(5),
                compression=firehose.Compression.GZIP,
            ),
        )
        role = self.delivery_stream.node.find_child("S3 Destination Role")
        acknowledge(role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",
                    "The Firehose S3 destination (L2) grants its role read/write on the whole capture bucket, "
                    "which holds nothing but captured requests, ground-truth labels and their delivery errors.",
                    "Action::s3:Abort*", "Action::s3:DeleteObject*", "Action::s3:GetBucket*",
                    "Action::s3:GetObject*", "Action::s3:List*", f"Resource::{bucket.arn_ref}/*")
        # The L2 adds a CIDR mapping that only Redshift/HTTP destinations read; an unused mapping is a
        # template warning (CloudFormation validate W7001, cfn-lint W7001).
        Stack.of(self).node.try_remove_child("@aws-cdk--aws-kinesisfirehose.CidrBlocks")

    @property
    def stream_name(self) -> str:
        return self.delivery_stream.delivery_stream_name

    def grant_put_batch(self, grantee: iam.IGrantable) -> iam.Grant:
        """The one action the inference function needs."""
        return self.delivery_stream.grant(grantee, "firehose:PutRecordBatch")

    def metric_data_freshness(self, period: Duration) -> cloudwatch.Metric:
        """Age of the oldest record not yet in S3, seconds (Maximum): grows while delivery fails."""
        return self.delivery_stream.metric("DeliveryToS3.DataFreshness", statistic="Maximum", period=period)

    def metric_delivered_records(self, period: Duration) -> cloudwatch.Metric:
        """Firehose records written to S3 (Sum); a record holds several lines."""
        return self.delivery_stream.metric("DeliveryToS3.Records", statistic="Sum", period=period)


def capture_stream(scope: Construct, *, bucket: BucketRef, model_name: str) -> LinesStream:
    """Captured requests under capture/<model>/ (construct id "Capture": the deployed stream's logical ids)."""
    return LinesStream(scope, "Capture", bucket=bucket, prefix=names.capture_prefix(model_name),
                       errors_prefix=names.capture_errors_prefix(model_name))


def labels_stream(scope: Construct, *, bucket: BucketRef, model_name: str) -> LinesStream:
    """POST /feedback's labels under labels/<model>/feedback/; failed deliveries under label-errors/<model>/."""
    return LinesStream(scope, "Labels", bucket=bucket, prefix=names.feedback_prefix(model_name),
                       errors_prefix=names.label_errors_prefix(model_name))
