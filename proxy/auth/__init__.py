"""Who a client is: authenticating it (the plugins, the password cache) and bounding
logins in progress."""
