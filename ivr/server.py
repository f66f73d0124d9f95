"""Start the IVR's FastAGI server for the service (``serve`` with the Asterisk backend)."""

from __future__ import annotations

from typing import Any

from ivr.agi_app import IvrApp, TtsAudio
from ivr.audio import sounds_dir
from ivr.fastagi import FastAgiServer
from ivr.prompts import Catalogue
from ivr.tts import EspeakTTS


async def start_ivr(runtime: Any, store: Any) -> FastAgiServer:
    settings = runtime.settings
    company = settings.company
    catalogue = Catalogue.load(settings.limited_message.voice, (*company.collection_names, company.name))
    tts = EspeakTTS(sounds_dir(settings))
    app = IvrApp(
        store, catalogue, TtsAudio(tts, str(sounds_dir(settings))), settings, runtime.secret, runtime.clock
    )
    server = FastAgiServer({"ivr": app.handle}, settings.service.agi_host, settings.service.agi_port)
    await server.start()
    return server
