"""The contracts every part of the stack shares: artifact, feature schema, capture record, baseline,
drift report, metric names, events, and every shared name (S3 layout, stacks, outputs, environment).

Training, serving, monitoring, deployment, the demo and the tests import these; nothing defines them
twice. Importing this package stays cheap (no CDK, nothing heavy): the serving cold start uses it.
"""
