"""The `mlops` command line: one entry point for every tool of the project."""
