"""Configuration: every default loads; bad values fail with file, key and reason."""

from __future__ import annotations

import pytest

from dialer.errors import ConfigError
from dialer.formats.config_file import load_settings
from dialer.rules.disclosure import limited_problems


def test_defaults_load(settings):
    assert settings.policy.min_days_past_due_voice == 10
    assert settings.packs["BR"].caps.voice_per_phone_per_day == 1
    assert {"boleto", "card", "crediario"} <= set(settings.cadence)


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            '[packs.BR.hours.default.voice]\nsun = "10:00-12:00"\n',
            "packs.BR.hours.default.voice",
            "looser than the law",
        ),
        ('[packs.BR.hours.RJ.voice]\nmon = "08:00-19:00"\n', "packs.BR.hours.RJ.voice", "mon 08:00-19:00"),
        (
            '[packs.BR.hours.CE.voice]\nmon = "08:00-18:00"\n[packs.BR.hours.CE.sms]\nsat = "09:00-10:00"\n',
            "packs.BR.hours.CE.sms",
            "sat 09:00-10:00",
        ),
        ('[packs.US.hours.default.voice]\nmon = "07:00-21:00"\n', "packs.US.hours.default.voice", "FDCPA"),
        (
            '[packs.BR.hours.default.voice]\nmon = "20:00-08:00"\n',
            "packs.BR.hours.default.voice.mon",
            "closes before it opens",
        ),
        (
            '[packs.BR.hours.default.voice]\nmon = "8h-20h"\n',
            "packs.BR.hours.default.voice.mon",
            "not a range",
        ),
        ("[packs.BR]\nobserve_holidays = false\n", "packs.BR.observe_holidays", "may not be turned off"),
        ("[packs.US]\nrecent_conversation_days = 6\n", "packs.US.recent_conversation_days", "legal floor"),
        (
            "[packs.US.caps]\nvoice_per_account_per_7_days = 8\n",
            "packs.US.caps.voice_per_account_per_7_days",
            "Reg F",
        ),
        (
            "[packs.BR.caps]\nvoice_per_phone_per_day = 0\n",
            "packs.BR.caps.voice_per_phone_per_day",
            "greater than or equal to 1",
        ),
        ('[policy]\nmin_days_past_due_voice = "ten"\n', "policy.min_days_past_due_voice", "integer"),
        ("[polcy]\nx = 1\n", "polcy", "unknown key"),
        (
            '[limited_message.voice]\npt-BR = "Sua dívida vence hoje. Ligue {callback_number}"\n',
            "limited_message.voice.pt-BR",
            "debt",
        ),
        (
            '[limited_message.sms]\nen = "{name}, you owe {amount}. Call {callback_number}"\n',
            "limited_message.sms.en",
            "{amount}",
        ),
        (
            '[limited_message.sms]\nen = "{name}, Exemplo Cobranças here. Call {callback_number}"\n',
            "limited_message.sms.en",
            "reveals collection",
        ),
        ('[service]\ntelephony = "pstn"\n', "service.telephony", "sandbox"),
        (
            '[cadence]\nboleto = [{ id = "x", channel = "sms", template = "limited" }]\n',
            "cadence.boleto.0",
            "exactly one of offset_days or trigger",
        ),
        (
            '[cadence]\nboleto = [{ id = "x", offset_days = 1, channel = "sms", template = "debt_notice" }]\n',
            "cadence.boleto.0.template",
            "limited message only",
        ),
        ('[service]\ntelephony = "asterisk"\n[company]\ncaller_id = ""\n', "company.caller_id", "caller ID"),
        (
            '[packs.BR]\ncustom_holidays = [{date = "02-30", name = "x"}]\n',
            "packs.BR.custom_holidays.0.date",
            "not YYYY-MM-DD or MM-DD",
        ),
    ],
)
def test_bad_config_names_file_key_reason(tmp_config, text, key, reason):
    path = tmp_config(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.file.endswith("company.toml")
    assert info.value.key == key
    assert reason in info.value.reason


def test_malformed_toml(tmp_config):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_config("[service\n"), env={})


def test_missing_file():
    with pytest.raises(ConfigError, match="file not found"):
        load_settings("/nonexistent/x.toml", env={})


def test_environment_overrides():
    s = load_settings(
        env={
            "REDIS_URL": "redis://example:6379/2",
            "DIALER_TELEPHONY": "asterisk",
            "DIALER_AMI_URLS": "ami://u:p@pbx1:5038, ami://u:p@pbx2:5038",
            "DIALER_AGI_PORT": "4600",
            "DIALER__POLICY__MIN_DAYS_PAST_DUE_VOICE": "12",
            "DIALER__PACKS__BR__CAPS__VOICE_PER_PHONE_PER_DAY": "2",
        }
    )
    assert s.service.redis_url == "redis://example:6379/2"
    assert s.service.telephony == "asterisk"
    assert s.service.ami_urls == ("ami://u:p@pbx1:5038", "ami://u:p@pbx2:5038")
    assert s.service.agi_port == 4600
    assert s.policy.min_days_past_due_voice == 12
    assert s.packs["BR"].caps.voice_per_phone_per_day == 2


def test_environment_errors_name_the_variable():
    with pytest.raises(ConfigError) as info:
        load_settings(env={"DIALER_AGI_PORT": "99999"})
    assert info.value.file == "environment $DIALER_AGI_PORT"
    assert info.value.key == "service.agi_port"


def test_company_file_overlays_only_its_keys(tmp_config):
    s = load_settings(tmp_config("[packs.BR.caps]\nvoice_per_phone_per_day = 2\n"), env={})
    assert s.packs["BR"].caps.voice_per_phone_per_day == 2
    assert s.packs["BR"].caps.voice_per_account_per_7_days == 3


@pytest.mark.parametrize(
    ("template", "ok"),
    [
        ("Olá {name}, aqui é {contact_name}. Retorne para {callback_number}.", True),
        ("Hello {name}, this is {contact_name} from {business_name}. Call {callback_number}.", True),
        ("{name}, please call Billy at {callback_number}.", True),
        ("{name}, seu boleto venceu. Ligue {callback_number}", False),
        ("{name}, regularize sua situação: pagamento pelo {callback_number}", False),
        ("{name}, you have an overdue balance. Call {callback_number}", False),
        ("{name}, call about your bills at {callback_number}", False),
        ("{name}, R$ 100. {callback_number}", False),
        ("{name}, ligue para nós.", False),  # no callback number
        ("{name}, {due_date} {callback_number}", False),
        ("{name}, {callback_number} {0}", False),
    ],
)
def test_limited_template_check(template, ok):
    assert (not limited_problems(template, ("Exemplo Cobranças",))) is ok
