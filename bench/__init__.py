"""Benchmarks, run on demand (``python -m bench``, ``./dev bench``; each module alone with
``python -m bench.passthrough`` and the like), never by the test suite, which only borrows
their clients, data set and process helpers. Nothing here imports the tests."""
