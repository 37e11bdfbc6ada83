"""Settings package: base.py holds everything, leaf modules change only what differs."""
