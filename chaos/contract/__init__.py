"""The service under test, described: how to start it, how to speak to it, and what it claims."""
