"""The HTTP side: API, console, debtor pages, webhooks."""
