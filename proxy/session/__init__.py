"""One client connection: the session, what all sessions share, and its command
handlers (login, queries, prepared statements, KILL, large commands, ML statements)."""
