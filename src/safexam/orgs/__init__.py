"""Organizations: the colleges and clubs a deployment serves, each a tenant of its own."""
