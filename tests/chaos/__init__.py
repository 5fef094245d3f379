"""Chaos suite: kill -9 of the server at random moments under load (``-m chaos``)."""
