"""The I/O-free core: serialization, the step vocabulary and its drivers, backoff, what a reader reads."""
