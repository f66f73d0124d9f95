"""Prompt audio on real audio: conversion of WAV/MP3/OGG uploads, and speech from espeak-ng."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import pytest

from ivr.audio import AudioError, AudioSegment, convert_for_asterisk, ffmpeg, load_wav, probe
from ivr.tts import EspeakTTS


def tone(
    path: Path, *freqs: int, seconds: float = 3.0, rate: int = 44100, codec: list[str] | None = None
) -> Path:
    sources = []
    for f in freqs:
        sources += ["-f", "lavfi", "-i", f"sine=frequency={f}:sample_rate={rate}:duration={seconds}"]
    mix = ["-filter_complex", f"amix=inputs={len(freqs)}", "-ac", "2"] if len(freqs) > 1 else ["-ac", "2"]
    subprocess.run(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *sources, *mix, *(codec or []), str(path)],
        check=True,
        capture_output=True,
    )
    return path


def goertzel(seg: AudioSegment, freq: float) -> float:
    samples = seg.get_array_of_samples()
    k = 2 * math.cos(2 * math.pi * freq / seg.frame_rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return math.sqrt(max(0.0, s1 * s1 + s2 * s2 - k * s1 * s2)) / len(samples)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".ogg"])
def test_uploads_become_asterisk_audio(tmp_path, suffix):
    src = tone(tmp_path / f"in{suffix}", 440, seconds=3.0)
    out = convert_for_asterisk(src, tmp_path / "out" / "prompt")
    assert (out.frame_rate, out.channels, out.sample_width) == (8000, 1, 2)
    assert abs(out.duration_s - 3.0) < 0.06  # within 2 %
    assert abs(out.dbfs - (-16.0)) < 0.5
    assert probe(tmp_path / "out" / "prompt.wav") == out
    ulaw = (tmp_path / "out" / "prompt.ulaw").read_bytes()
    assert abs(len(ulaw) - 3.0 * 8000) < 0.06 * 8000  # one byte per sample


def test_no_aliasing_above_the_telephone_band(tmp_path):
    """A 6 kHz tone must not fold back to 2 kHz when the rate goes to 8 kHz."""
    src = tone(tmp_path / "mix.wav", 440, 6000, seconds=2.0)
    convert_for_asterisk(src, tmp_path / "mix-out")
    seg = load_wav(tmp_path / "mix-out.wav")
    wanted, alias = goertzel(seg, 440), goertzel(seg, 2000)
    assert 20 * math.log10(wanted / max(alias, 1e-9)) > 30  # the alias is 30 dB down or more


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty"), (b"this is not audio at all" * 10, "not an audio file")],
)
def test_bad_uploads_are_refused(tmp_path, data, reason):
    with pytest.raises(AudioError, match=reason):
        convert_for_asterisk(data, tmp_path / "x")


def test_too_long_is_refused(tmp_path):
    src = tone(tmp_path / "long.mp3", 440, seconds=301, rate=8000)
    with pytest.raises(AudioError, match="longer than 5 minutes"):
        convert_for_asterisk(src, tmp_path / "x")


@pytest.fixture(scope="module")
def espeak_present():
    assert shutil.which("espeak-ng"), (
        "espeak-ng is missing: run `make test` (it installs it) or apt-get install espeak-ng"
    )


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("pt-BR", "Olá. Esta é uma ligação para Maria Silva. Se você é Maria Silva, digite 1."),
        ("en", "Hello. This is a call for Maria Silva. If you are Maria Silva, press 1."),
    ],
)
async def test_tts_speaks_and_caches(tmp_path, espeak_present, language, text):
    tts = EspeakTTS(tmp_path / "sounds")
    path = await tts.synthesize(text, language)
    seg = load_wav(path)
    assert (seg.frame_rate, seg.channels, seg.sample_width) == (8000, 1, 2)
    seconds = len(seg) / 1000
    assert 0.03 * len(text) < seconds < 0.2 * len(text)  # plausible speech length
    assert seg.dBFS > -30  # not silence
    # speech has pauses between words: some 50 ms windows are much quieter than the loud ones
    windows = [seg[i : i + 50].rms for i in range(0, len(seg) - 50, 50)]
    assert min(windows) < max(windows) / 10
    again = await tts.synthesize(text, language)
    assert again == path and tts.renders == 1
    both = await __import__("asyncio").gather(*(tts.synthesize(text + "!", language) for _ in range(5)))
    assert len(set(both)) == 1 and tts.renders == 2  # five calls at once, one render
