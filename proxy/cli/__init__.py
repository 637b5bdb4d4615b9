"""The ``mlproxy`` command: serve (``main``), demo, explain and the alias function commands."""
