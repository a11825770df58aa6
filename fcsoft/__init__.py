"""fcsoft: a pure-Python software Fibre Channel SAN (fabric switch and storage arrays) over TCP."""

__version__ = "0.1.0"
