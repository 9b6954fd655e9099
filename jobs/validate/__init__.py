"""The validation stage: the gate every output of a date passes before the load may run."""
