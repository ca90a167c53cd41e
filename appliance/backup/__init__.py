"""Taking a snapshot to S3 and restoring one: shared by the agent and the operators' commands."""
