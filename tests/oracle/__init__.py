"""Differential tier: the same statements through the proxy and directly (or as stored
functions), compared; MariaDB's own test suite through the proxy."""
