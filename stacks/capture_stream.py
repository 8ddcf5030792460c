"""The request-capture Firehose stream: JSON lines into the capture bucket, hourly partitions, GZIP."""
from __future__ import annotations

from aws_cdk import Duration, Size, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from constructs import Construct

from contracts import names
from stacks.nag import acknowledge
from stacks.shared_buckets import BucketRef

# Firehose renders the partition; the drift check reads names.capture_prefix(model) + YYYY/MM/DD/HH/.
TIME_PARTITION = "!{timestamp:yyyy/MM/dd/HH}/"


class CaptureStream(Construct):
    """Direct-put delivery stream (encrypted at rest) into s3://<capture>/capture/<model_name>/YYYY/MM/DD/HH/."""

    def __init__(self, scope: Construct, construct_id: str, *, bucket: BucketRef, model_name: str) -> None:
        super().__init__(scope, construct_id)
        self.prefix = names.capture_prefix(model_name)
        self.delivery_stream = firehose.DeliveryStream(
            self, "Stream",
            encryption=firehose.StreamEncryption.aws_owned_key(),
            destination=firehose.S3Bucket(
                bucket.bucket,
                data_output_prefix=self.prefix + TIME_PARTITION,
                # Outside capture/ so the drift check never reads failed records as traffic.
                error_output_prefix=f"{names.capture_errors_prefix(model_name)}!{{firehose:error-output-type}}/{TIME_PARTITION}",
                buffering_interval=Duration.seconds(60),
                buffering_size=Size.mebibytes(5),
                compression=firehose.Compression.GZIP,
            ),
        )
        role = self.delivery_stream.node.find_child("S3 Destination Role")
        acknowledge(role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",
                    "The Firehose S3 destination (L2) grants its role read/write on the whole capture bucket, "
                    "which holds nothing but captured requests and their delivery errors.",
                    "Action::s3:Abort*", "Action::s3:DeleteObject*", "Action::s3:GetBucket*",
                    "Action::s3:GetObject*", "Action::s3:List*", f"Resource::{bucket.arn_ref}/*")
        # The L2 adds a CIDR mapping that only Redshift/HTTP destinations read; an unused mapping is a
        # template warning (CloudFormation validate W7001, cfn-lint W7001).
        Stack.of(self).node.try_remove_child("@aws-cdk--aws-kinesisfirehose.CidrBlocks")

    def grant_put_batch(self, grantee: iam.IGrantable) -> iam.Grant:
        """The one action the inference function needs."""
        return self.delivery_stream.grant(grantee, "firehose:PutRecordBatch")

    def metric_data_freshness(self, period: Duration) -> cloudwatch.Metric:
        """Age of the oldest record not yet in S3, seconds (Maximum): grows while delivery fails."""
        return self.delivery_stream.metric("DeliveryToS3.DataFreshness", statistic="Maximum", period=period)

    def metric_delivered_records(self, period: Duration) -> cloudwatch.Metric:
        """Firehose records written to S3 (Sum); a record holds several capture lines."""
        return self.delivery_stream.metric("DeliveryToS3.Records", statistic="Sum", period=period)
