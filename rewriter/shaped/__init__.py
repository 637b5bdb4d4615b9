"""Statements that come again with other literals: their shape (shapes), the plan made
once per shape (plan_cache), the rewrite of a shape whose calls all take literals
(constant_calls), and such a shape's statements recognised in one match (matcher)."""
