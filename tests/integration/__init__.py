"""End-to-end tier: real clients through the proxy to the real MariaDB the suite starts."""
