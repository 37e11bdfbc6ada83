"""The ACK wait of an API process: its listener on `orders.ack` (`listener.py`), the one
listener of this process (`process_listener.py`), and whether a request may wait (`gate.py`)."""
