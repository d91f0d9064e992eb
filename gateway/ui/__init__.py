"""The review web page at /ui/: server-rendered templates and a signed session cookie."""
