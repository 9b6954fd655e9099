"""Spark jobs (issue #5 onwards): staging tables, bridges and marts."""
