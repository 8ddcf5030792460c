"""Model building and the contracts shared by training, serving and drift.

Importing this package must stay cheap: serving and the CDK app import its
contract modules, so nothing heavy is imported here.
"""
