"""maestro: a plugin-based toolkit for classical piano music on the MAESTRO dataset."""

__version__ = "0.1.0"
