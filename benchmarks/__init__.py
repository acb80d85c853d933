"""Benchmarks of resumed against PlainBox's own code (``make bench``: ``benchmarks.run``)."""
