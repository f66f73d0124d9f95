"""Voice backends behind one protocol (``base``): ``sandbox`` and ``asterisk``."""
