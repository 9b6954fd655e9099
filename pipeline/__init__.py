"""Plumbing shared by every step: configuration, logging, lake storage and the CLI."""
