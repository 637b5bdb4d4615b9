"""Unit tier: pure code and sans-IO protocol (no database, no sockets beyond a fake transport);
also the shape of the house (architecture, docs, doctests). Seconds."""
