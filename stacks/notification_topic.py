"""An SNS topic encrypted with its own rotating KMS key, SSL-only, with an optional e-mail subscription."""
from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class NotificationTopic(Construct):
    """SNS topic for people: alarms and pipeline notices. `service_publishers` may use the key (e.g. CloudWatch)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        display_name: str,
        email: str = "",
        service_publishers: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        # A customer key, not aws/sns: AWS services such as CloudWatch alarms can only publish to
        # an encrypted topic when the key policy lets them use the key.
        self.key = kms.Key(self, "Key", enable_key_rotation=True, description=f"{display_name} (SNS)",
                           removal_policy=RemovalPolicy.DESTROY, pending_window=Duration.days(7))
        for service in service_publishers:
            self.key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "Topic", display_name=display_name, master_key=self.key, enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
