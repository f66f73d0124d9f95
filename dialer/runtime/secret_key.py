"""The service's HMAC key: ``DIALER_SECRET_KEY`` in production, else one kept in data_dir.

The key signs payment links and salts the IVR second-factor hashes. It is never logged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_secret(secret_key: str, data_dir: str | Path) -> bytes:
    if secret_key:
        return secret_key.encode()
    path = Path(data_dir) / "secret.key"
    if path.exists():
        return path.read_text().strip().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value.encode()
