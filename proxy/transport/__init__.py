"""Moving bytes: the packet stream over a socket, relaying responses, TLS, the event
loop's choice and returning freed memory to the system."""
