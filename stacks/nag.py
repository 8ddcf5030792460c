"""Narrow cdk-nag acknowledgments: one construct, one rule, the exact findings, one reason."""
from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str, *findings: str) -> None:
    """Acknowledge `rule` on `construct`: each listed finding (e.g. 'Resource::*'), or the bare rule if none."""
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    Validations.of(construct).acknowledge(*(Acknowledgment(id=i, reason=reason) for i in ids))
