"""The test suite: one folder per package (contracts, training, pipeline, inference, drift_check, stacks, mlops), plus the loop end to end and reliability."""
