"""Pure rules: from data types to a decision or a plan, one module per rule, no I/O, no clock."""
