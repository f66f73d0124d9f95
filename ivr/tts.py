"""Text to speech behind a protocol; espeak-ng (offline, pt-BR and English) by default.

A rendered prompt is cached by the hash of (engine, voice, rate, text): each sentence is
spoken once, and concurrent calls that need the same sentence share one render. The
files are 8 kHz mono 16-bit WAV (plus .ulaw) in the sounds directory, which Asterisk must
see at the same path. A company can plug a better engine (or upload recordings, which the
catalogue prefers) by implementing ``TextToSpeech``.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path
from typing import Protocol

from dialer.errors import ReguaError
from ivr.audio import convert_for_asterisk

VOICES = {"pt-BR": "pt-br", "en": "en-us"}


class TtsError(ReguaError):
    """The speech engine could not render a text."""


class TextToSpeech(Protocol):
    async def synthesize(self, text: str, language: str) -> Path:
        """An 8 kHz mono 16-bit WAV of ``text`` spoken in ``language``."""
        ...


class EspeakTTS:
    engine = "espeak-ng"

    def __init__(
        self, cache_dir: str | Path, *, rate: int = 150, pitch: int = 45, binary: str | None = None
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.rate, self.pitch = rate, pitch
        self.binary = binary or shutil.which("espeak-ng")
        self._locks: dict[str, asyncio.Lock] = {}
        self.renders = 0

    def _key(self, text: str, voice: str) -> str:
        return hashlib.sha256(f"{self.engine}|{voice}|{self.rate}|{self.pitch}|{text}".encode()).hexdigest()[
            :32
        ]

    async def synthesize(self, text: str, language: str) -> Path:
        voice = VOICES.get(language, VOICES["pt-BR"])
        key = self._key(text, voice)
        dst = self.cache_dir / key[:2] / f"{key}.wav"
        if dst.exists():
            return dst
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if dst.exists():  # another call rendered it while we waited
                return dst
            if not self.binary:
                raise TtsError(
                    "espeak-ng is not installed: run `apt-get install espeak-ng` (make test/demo do)"
                )
            proc = await asyncio.create_subprocess_exec(
                self.binary,
                "-v",
                voice,
                "-s",
                str(self.rate),
                "-p",
                str(self.pitch),
                "--stdout",
                text,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            raw, err = await proc.communicate()
            if proc.returncode != 0 or len(raw) < 44:
                raise TtsError(f"espeak-ng failed ({proc.returncode}): {err.decode(errors='replace')[:200]}")
            await asyncio.to_thread(convert_for_asterisk, raw, dst)
            self.renders += 1
        self._locks.pop(key, None)
        return dst
