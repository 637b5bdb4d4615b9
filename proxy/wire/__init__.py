"""The MySQL wire protocol as sans-IO codecs: packets, the handshake, scrambles,
binary parameters, the response scanner. Bytes in, values out; nothing here touches a socket."""
