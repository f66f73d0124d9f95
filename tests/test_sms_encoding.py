"""GSM-7 / UCS-2 detection, segment boundaries and folding, on real Portuguese text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms_gateway.encoding import GSM_BASIC, GSM_EXTENSION, analyse, cap_segments, fold_to_gsm, is_gsm7

LIMITED = (
    "Olá, Maria Silva. Aqui é Ana, da Central de Atendimento. Por favor, ligue para "
    "0800 123 4567 em horário comercial. Obrigada."
)
FOLDABLE = "Atenção: sua fatura vence amanhã. Não deixe para depois — pague até às 20h! Dúvidas? Ligue já."


def units_of(part: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return sum(2 if c in GSM_EXTENSION else 1 for c in part)
    return len(part.encode("utf-16-le")) // 2


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Pague com Pix: é simples.", "GSM-7"),  # é is in GSM 03.38's basic table
        ("Olá, João", "UCS-2"),  # á and ã are not
        ("Você tem uma mensagem", "UCS-2"),
        ("Ação necessária", "UCS-2"),  # ç (lower case) is not in GSM-7, Ç is
        ("ÇA VA", "GSM-7"),
        ("Valor: R$ 10,00 {boleto} [vence] ~hoje~ | €5 ^", "GSM-7"),
        ("Preço", "UCS-2"),
        ("Obrigado 🙏", "UCS-2"),
    ],
)
def test_encoding_detection(text, encoding):
    assert analyse(text).encoding == encoding
    assert is_gsm7(text) == (encoding == "GSM-7")


def test_real_limited_message_is_ucs2_until_folded():
    info = analyse(LIMITED)
    assert info.encoding == "UCS-2"  # é is in GSM-7, the á of "Olá" is not
    assert info.units == len(LIMITED) == 124
    assert info.segments == 2  # 124 UTF-16 units > 70: two parts of at most 67
    assert [len(p) for p in info.parts] == [67, 57]
    folded = fold_to_gsm(LIMITED)
    assert folded.startswith("Ola, Maria Silva. Aqui é Ana")
    folded_info = analyse(folded)
    assert folded_info.encoding == "GSM-7"
    assert folded_info.segments == 1


def test_fold_keeps_gsm_characters_and_replaces_the_rest():
    assert fold_to_gsm("ãõâêôíúç ÃÕÂÊÔÍÚ Ç é à ü ñ") == "aoaeoiuc AOAEOIU Ç é à ü ñ"
    assert fold_to_gsm("“aspas” ‘simples’ – travessão — reticências… nº 1ª") == (
        "\"aspas\" 'simples' - travessao - reticencias... no 1a"
    )
    folded = fold_to_gsm(FOLDABLE)
    assert is_gsm7(folded)
    assert folded == (
        "Atencao: sua fatura vence amanha. Nao deixe para depois - pague até às 20h! Duvidas? Ligue ja."
    )
    assert analyse(FOLDABLE).segments == 2 and analyse(folded).segments == 1


def test_fold_keeps_what_has_no_gsm_form():
    assert fold_to_gsm("Obrigado 🙏 你好") == "Obrigado 🙏 你好"
    assert analyse(fold_to_gsm("Obrigado 🙏")).encoding == "UCS-2"


@pytest.mark.parametrize(
    ("length", "segments"),
    [(0, 0), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (153 * 3, 3), (153 * 3 + 1, 4)],
)
def test_gsm7_boundaries(length, segments):
    text = ("Pague sua fatura " * 40)[:length]
    info = analyse(text)
    assert (info.encoding, info.units, info.segments) == ("GSM-7", length, segments)
    assert all(len(p) <= (160 if segments == 1 else 153) for p in info.parts)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(length, segments):
    text = "ã" + ("ação " * 60)[1:length]  # UCS-2 from its first character
    info = analyse(text)
    assert (info.encoding, info.units, info.segments) == ("UCS-2", length, segments)
    assert all(len(p) <= (70 if segments == 1 else 67) for p in info.parts)


def test_extension_characters_cost_two_septets():
    assert analyse("€" * 80).units == 160 and analyse("€" * 80).segments == 1
    assert analyse("€" * 81).segments == 2
    assert analyse("a" * 159 + "[").units == 161 and analyse("a" * 159 + "[").segments == 2
    assert analyse("a" * 158 + "{").segments == 1


def test_an_escape_pair_is_never_split():
    text = "a" * 152 + "€" + "b" * 10  # the € would straddle septets 153/154
    info = analyse(text)
    assert info.parts[0] == "a" * 152  # 152 septets: the € moves whole to part 2
    assert info.parts[1].startswith("€")
    assert "".join(info.parts) == text


def test_a_surrogate_pair_is_never_split():
    text = "ã" * 66 + "🙏" + "ã" * 10  # the emoji costs 2 UTF-16 units: 66 + 2 > 67
    info = analyse(text)
    assert info.parts[0] == "ã" * 66 and info.parts[1].startswith("🙏")
    assert info.units == 66 + 2 + 10


def test_cap_segments():
    text, info = cap_segments(FOLDABLE, 1, fold=True)
    assert info.segments == 1 and is_gsm7(text)
    with pytest.raises(ValueError, match="2 UCS-2 segments; the cap is 1"):
        cap_segments(FOLDABLE, 1)


PORTUGUESE = st.text(
    alphabet=st.sampled_from(
        list(GSM_BASIC.replace("\x1b", "") + GSM_EXTENSION + "áâãàçéêíóôõúÁÂÃÉÊÍÓÔÕÚ😀")
    ),
    max_size=700,
)


@settings(max_examples=300, deadline=None)
@given(PORTUGUESE)
def test_segments_rebuild_the_text_and_fit(text):
    info = analyse(text)
    assert "".join(info.parts) == text
    assert info.segments == len(info.parts)
    limit = (
        (160 if info.encoding == "GSM-7" else 70)
        if info.segments <= 1
        else (153 if info.encoding == "GSM-7" else 67)
    )
    assert all(0 < units_of(p, info.encoding) <= limit for p in info.parts)
    assert sum(units_of(p, info.encoding) for p in info.parts) == info.units


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz áâãàçéêíóôõúÁÂÃÉÊÍÓÔÕÚÇ.,!?R$0123456789")),
        max_size=400,
    )
)
def test_folded_portuguese_is_gsm7_and_never_longer(text):
    folded = fold_to_gsm(text)
    assert is_gsm7(folded)
    assert len(folded) == len(text)
    assert analyse(folded).segments <= analyse(text).segments
