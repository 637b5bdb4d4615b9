"""SQL knowledge: which statements can call ML functions, and how to rewrite them."""
