"""Running ML statements: the plan runner, answers inline or in lookup tables, their
checks and memory, ML prepared statements, privileges, settings, EXPLAIN, the status
counters and the alias function registry."""
