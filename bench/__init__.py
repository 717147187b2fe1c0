"""Load generator and scenarios for the communities server: `python -m bench.run`."""
