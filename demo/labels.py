"""Ground truth for the local loop: the true label of every predicted row, sent back later for part of them.

The demo's traffic is rows of a labelled CSV, so it knows each row's label; the API answers each row's
prediction id. Labels come back as a client would send them: some through POST /feedback, the rest as a
bulk CSV (a warehouse export) put under labels/<model>/, and only for a share of the predictions.
"""
from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field

import boto3

from contracts import names
from demo import traffic
from demo.data import ConceptDrift

LABELLED_SHARE = 0.75  # of the predicted rows, the share whose label comes back
FEEDBACK_SHARE = 0.5  # of those, the share sent through POST /feedback; the rest arrive in a bulk file


@dataclass
class Segment:
    """The requests of one stretch of traffic and, aligned with them, the true label of each row they send."""

    requests: list[tuple[str, bytes]] = field(default_factory=list)
    truths: list[list[str]] = field(default_factory=list)  # [] for a malformed request

    def add(self, requests: list[tuple[str, bytes]], truths: list[list[str]]) -> None:
        self.requests += requests
        self.truths += truths

    def shuffled(self, rng: random.Random) -> Segment:
        order = list(range(len(self.requests)))
        rng.shuffle(order)
        return Segment([self.requests[i] for i in order], [self.truths[i] for i in order])


def relabelled(rows: list[dict], truths: list[str], concept: ConceptDrift | None) -> list[str]:
    """The labels of rows as served: the world's new labels where the concept drifted."""
    return truths if concept is None else [concept.relabel(row, t) for row, t in zip(rows, truths)]


def labels_for(result: traffic.TrafficResult, segment: Segment, rng: random.Random,
               share: float = LABELLED_SHARE) -> list[dict]:
    """{"id", "label"} for `share` of the rows the API predicted, matched by the ids it answered."""
    found = []
    for ids, truths in zip(result.ids, segment.truths, strict=True):
        if len(ids) != len(truths):
            continue  # a refused request: nothing was predicted, nothing to label
        found += [{"id": pid, "label": label} for pid, label in zip(ids, truths) if rng.random() < share]
    return found


@dataclass
class Delivery:
    feedback: int  # labels sent through POST /feedback
    feedback_statuses: dict[int, int]
    bulk: int  # labels in the bulk file
    bulk_key: str


def deliver(url: str, bucket: str, model_name: str, labels: list[dict], name: str, rng: random.Random) -> Delivery:
    """Send FEEDBACK_SHARE of the labels to POST /feedback and put the rest as a bulk CSV under labels/<model>/."""
    shuffled = labels[:]
    rng.shuffle(shuffled)
    cut = int(len(shuffled) * FEEDBACK_SHARE)
    api, bulk = shuffled[:cut], shuffled[cut:]
    statuses = traffic.send_labels(url, api)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "label"])
    writer.writerows((item["id"], item["label"]) for item in bulk)
    key = f"{names.labels_prefix(model_name)}bulk/{name}.csv"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=out.getvalue().encode(), ContentType="text/csv")
    return Delivery(feedback=len(api), feedback_statuses=dict(statuses), bulk=len(bulk), bulk_key=key)
