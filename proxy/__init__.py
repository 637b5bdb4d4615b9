"""The MySQL side of mlproxy: a proxy that speaks the MySQL wire protocol to clients and
to the backend, relays what has no ML call and runs what has.

The flat core is the process: ``config`` (every setting, declared once), ``server`` (the
listener and its lifecycle), ``workers`` (several processes on one port), ``errors`` (the
one mapping to MySQL errors), ``logs`` (the ``mlproxy`` loggers' format) and
``embedded_db`` (the throwaway database of the demo, the tests and the benchmarks). The
rooms, roughly bottom up: ``wire`` (codecs), ``transport``, ``auth``, ``upstream`` (the
backend connection), ``ops`` (metrics and health), ``ml`` (running ML statements),
``session`` (one client connection and its command handlers), ``replicas`` (what the
replicas of one deployment share through Redis, beside ``ml`` and ``session``), ``cli``
(the command).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlproxy")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
