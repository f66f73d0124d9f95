"""SMS gateways behind one protocol; one module per provider (``sandbox`` is the default)."""
