"""Ingestion: IGDB API v4 (or the built-in sandbox) to the raw JSONL lake. Plain Python, no Spark."""
