"""Orchestration on top of the stages: the CLI, the runner and its steps, the ledger, progress markers,
status, notifications, retention, and where it runs (spark-submit entry point, EMR, the packed
environment, a local standalone cluster)."""
