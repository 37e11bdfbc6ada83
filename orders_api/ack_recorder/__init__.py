"""The ACK recorder, run beside the relay: what the worker did with each order, recorded on
the API database's rows (`recorder.py`)."""
