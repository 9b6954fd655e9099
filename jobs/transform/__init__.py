"""The transform stage: raw JSONL of one date → staging, quarantine, dimensions, bridges and marts."""
