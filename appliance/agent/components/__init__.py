"""The agent's concerns, one module each: its state, the pure rule it applies, the adapters it is given,
and the reason it returns for the status endpoint and the log."""
