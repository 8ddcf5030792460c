"""Scheduled drift check: captured requests vs the production model's training baseline."""
