"""Audio for Asterisk: uploaded prompts (WAV, MP3, OGG) to 8 kHz mono 16-bit, loudness set.

ffmpeg (from the ``imageio-ffmpeg`` wheel: no system package needed) decodes any input and
goes to 8 kHz mono after a steep 3.4 kHz low-pass — pydub's own resampler has no
anti-alias filter; pydub then sets the loudness (RMS target with a peak ceiling) and
writes a WAV Asterisk plays as is, plus a raw ``.ulaw`` beside it (no transcoding on a
u-law trunk).
"""

from __future__ import annotations

import audioop
import io
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # pydub looks for an ``ffmpeg`` on PATH at import; ours comes from imageio-ffmpeg
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment

from dialer.errors import InputError

TARGET_RATE = 8000
TARGET_DBFS = -16.0  # RMS loudness of every prompt
PEAK_CEILING_DBFS = -1.0
MAX_SECONDS = 300
MAX_BYTES = 50 * 1024 * 1024


class AudioError(InputError):
    """An uploaded file that cannot become a prompt; the message says why."""


@dataclass(frozen=True, slots=True)
class AudioInfo:
    frame_rate: int
    channels: int
    sample_width: int
    duration_s: float
    dbfs: float


def ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _decode(data: bytes, fmt: str | None) -> AudioSegment:
    """Any supported input to 8 kHz mono 16-bit, band-limited to 3.4 kHz before resampling."""
    if len(data) == 0:
        raise AudioError("the file is empty")
    if len(data) > MAX_BYTES:
        raise AudioError(f"the file is larger than {MAX_BYTES // 2**20} MiB")
    proc = subprocess.run(
        [
            ffmpeg(),
            "-hide_banner",
            "-loglevel",
            "error",
            *(["-f", fmt] if fmt else []),
            "-i",
            "pipe:0",
            "-t",
            str(MAX_SECONDS + 1),
            # a steep low-pass at 3.4 kHz (telephone band) *before* the resampler goes to 8 kHz
            "-af",
            "lowpass=f=3400:p=2,lowpass=f=3400:p=2,lowpass=f=3400:p=2",
            "-ac",
            "1",
            "-ar",
            str(TARGET_RATE),
            "-f",
            "wav",
            "-acodec",
            "pcm_s16le",
            "pipe:1",
        ],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0 or len(proc.stdout) < 44:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["unknown format"]
        raise AudioError(f"not an audio file ffmpeg can read (WAV, MP3, OGG): {reason[0]}")
    return AudioSegment.from_file(io.BytesIO(proc.stdout), format="wav")


def normalise(seg: AudioSegment) -> AudioSegment:
    """Loudness at TARGET_DBFS (RMS) without passing the peak ceiling."""
    seg = seg.set_channels(1).set_sample_width(2).set_frame_rate(TARGET_RATE)
    if seg.rms > 0:
        seg = seg.apply_gain(TARGET_DBFS - seg.dBFS)
        if seg.max_dBFS > PEAK_CEILING_DBFS:
            seg = seg.apply_gain(PEAK_CEILING_DBFS - seg.max_dBFS)
    return seg


def convert_for_asterisk(
    src: Path | bytes, dst: Path, *, fmt: str | None = None, ulaw: bool = True
) -> AudioInfo:
    """Convert an uploaded prompt; writes ``dst`` (.wav) and, with ``ulaw``, ``dst`` .ulaw beside it."""
    data = src.read_bytes() if isinstance(src, Path) else src
    seg = _decode(data, fmt)
    if len(seg) == 0:
        raise AudioError("the recording has no sound in it (0 seconds)")
    if len(seg) > MAX_SECONDS * 1000:
        raise AudioError(f"the recording is longer than {MAX_SECONDS // 60} minutes")
    seg = normalise(seg)
    dst = dst.with_suffix(".wav")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".part")
    with open(tmp, "wb") as fh:  # our handle: pydub's export leaves its own open
        seg.export(fh, format="wav")
    tmp.replace(dst)
    if ulaw:
        dst.with_suffix(".ulaw").write_bytes(audioop.lin2ulaw(seg.raw_data, 2))
    return info(seg)


def info(seg: AudioSegment) -> AudioInfo:
    return AudioInfo(
        seg.frame_rate,
        seg.channels,
        seg.sample_width,
        round(len(seg) / 1000, 3),
        round(seg.dBFS, 2) if seg.rms else float("-inf"),
    )


def load_wav(path: Path) -> AudioSegment:
    with open(path, "rb") as fh:
        return AudioSegment.from_file(fh, format="wav")


def probe(path: Path) -> AudioInfo:
    return info(load_wav(path))


def sounds_dir(settings: Any) -> Path:
    """Where the prompts' audio lives (TTS renderings and recordings): Asterisk reads it."""
    return Path(settings.service.sounds_dir or Path(settings.service.data_dir) / "sounds").resolve()
