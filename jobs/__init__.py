"""The Spark stages: transform/, validate/ and load/, and what they share at this level (the dataset
declarations, schemas, the session, lake I/O, fingerprints, footers, reports). A stage imports the
shared modules and core, never another stage nor the orchestration."""
