"""The CDK app: configuration from cdk.json context, four stacks, cdk-nag AwsSolutions at synth."""
import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.app_stacks import build_stacks
from stacks.config import Config

app = cdk.App()
build_stacks(app, Config.from_context(app.node.try_get_context))
# Synth fails on any finding not acknowledged (narrowly, with a reason) next to its construct.
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
app.synth()
