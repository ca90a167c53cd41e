"""The instance agent: a loop of observe (reads only) → decide (a pure rule) → act → components."""
