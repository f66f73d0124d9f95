"""Payment providers: one module each, chosen by URL (``payments.provider``), like the SMS
gateways. ``base`` is the protocol; ``factory`` builds one from a URL."""
