"""The backend connection: logging in as the client, and the proxy's own queries on
that connection."""
