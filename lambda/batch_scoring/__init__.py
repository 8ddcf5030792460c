"""Batch scoring: files of any size scored with the serving code, on Step Functions Distributed Map or locally."""
