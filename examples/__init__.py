"""Runnable examples that go with the mlproxy README and docs."""
