"""Request capture: a sample of predictions as JSON lines to a Firehose delivery stream.

Delivery (inference.firehose_lines) never fails a prediction: a line that cannot be delivered is
counted in CaptureRecordsDropped and logged.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from contracts import metric_names
from inference import firehose_lines
from inference.firehose_lines import LineStream
from inference.observability import logger, metrics


class CaptureSink(LineStream):
    """Samples predictions and delivers their capture lines to Firehose."""

    def __init__(self, stream: str, sample_rate: float, client: Any = None) -> None:
        self.sample_rate = sample_rate
        self.enabled = bool(stream) and sample_rate > 0
        if client is None and self.enabled:  # the signed call imports nothing at init; botocore only where it must
            client = firehose_lines.environment_client()
        super().__init__(stream, client, what="capture")

    def sampled(self, n: int) -> list[int]:
        """Which of n predictions to capture."""
        if not self.enabled:
            return []
        if self.sample_rate >= 1.0:
            return list(range(n))
        return [i for i in range(n) if random.random() < self.sample_rate]

    def send(self, lines: Sequence[bytes]) -> None:
        """Deliver the lines; count and log what could not be delivered, never raise."""
        sent, dropped = self.deliver(lines)
        if sent:
            metrics.add_metric(name=metric_names.CAPTURE_SENT, unit=MetricUnit.Count, value=sent)
        if dropped:
            metrics.add_metric(name=metric_names.CAPTURE_DROPPED, unit=MetricUnit.Count, value=dropped)
            logger.warning("capture records dropped", extra={"dropped": dropped, "stream": self.stream})
