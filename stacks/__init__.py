"""The CDK app's stacks and constructs: storage, training, serving, monitoring."""
