"""Inference, not SQL: backends behind one interface, and the engine that batches for them."""
