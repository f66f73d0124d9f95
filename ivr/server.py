"""Start the IVR's FastAGI server for the service (``serve`` with the Asterisk backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ivr.agi_app import IvrApp, TtsAudio
from ivr.fastagi import FastAgiServer
from ivr.prompts import Catalogue
from ivr.tts import EspeakTTS


def sounds_dir(settings: Any) -> Path:
    return Path(settings.service.sounds_dir or Path(settings.service.data_dir) / "sounds").resolve()


async def start_ivr(runtime: Any, store: Any) -> FastAgiServer:
    settings = runtime.settings
    company = settings.company
    catalogue = Catalogue.load(settings.limited_message.voice, (*company.collection_names, company.name))
    tts = EspeakTTS(sounds_dir(settings))
    app = IvrApp(store, catalogue, TtsAudio(tts, str(sounds_dir(settings))), settings, runtime.secret)
    server = FastAgiServer({"ivr": app.handle}, settings.service.agi_host, settings.service.agi_port)
    await server.start()
    return server
