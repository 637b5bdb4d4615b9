"""MariaDB's own regression suite, run directly and through the proxy, outputs compared.

Debian's ``mariadb-test`` package installs the ``mariadb-test`` runner (mysqltest) and
MariaDB's test files (``/usr/share/mysql/mysql-test/main/*.test``). Each chosen file is run in
record mode against a throwaway MariaDB, once straight to it and once through the proxy, with
the ``test`` database, leftover accounts and changed global variables reset before every run;
the two recorded outputs must be identical (issue 11, "The method, in the project").

- ``selection``: which files fit (no ``--exec``, restarts, server options or debug builds),
  and the two lists kept here: ``deterministic.txt`` (two direct runs agree) and
  ``known_differences.txt`` (file: diagnosis of why the proxy's output differs).
- ``runner``: one ``mariadb-test`` run of one file against one port.
- ``environment``: the server, the proxy in front of it, and the reset between files.
- ``__main__``: ``python -m tests.oracle.mariadb_suite`` (``./dev compat``): the full run, and
  ``calibrate``, which regenerates ``deterministic.txt``.

``tests/oracle/test_mariadb_suite.py`` runs a subset of a few minutes in the pytest suite.
"""
