"""The batch scoring stack: jobs of any size on a Step Functions Distributed Map, started by an upload or by hand."""
from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from contracts.names import Output
from stacks.batch_scoring import BatchScoring
from stacks.config import Config
from stacks.shared_buckets import SharedBuckets
from stacks.storage_stack import StorageStack


class BatchStack(Stack):
    """Plan → score the parts (Distributed Map) → summarize; input under batch/<model>/input/ of the data bucket."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, storage: StorageStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        buckets = SharedBuckets.import_from(self, storage)
        self.scoring = BatchScoring(self, "Scoring", config=config, buckets=buckets, image=storage.image)
        self.state_machine = self.scoring.state_machine
        self.input_uri = buckets.data.uri(self.scoring.input_prefix)
        CfnOutput(self, Output.BATCH_STATE_MACHINE_ARN, value=self.state_machine.state_machine_arn)
        CfnOutput(self, Output.BATCH_INPUT_URI, value=self.input_uri,
                  description="Upload files to score under <this>/<job>/; with batch_trigger_on_upload each "
                              "file landing here starts a job.")
