"""WXBizMsgCrypt, text splitting and config validation."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wecom_testkit import AIBOT_AES, VEC_AES, VEC_CORP, VEC_TOKEN, aibot_options, app_options, bot

from adapters.wecom import WeComAdapter, WXBizMsgCrypt
from adapters.wecom._text import split_utf8
from botcore.channel import AdapterDeps
from botcore.errors import ConfigError, SignatureError

VEC_ECHOSTR = ("P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZX"
               "vnaqQ==")


def _plain(crypt_key: str, encrypt: str) -> bytes:
    key = base64.b64decode(crypt_key + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    return decryptor.update(base64.b64decode(encrypt)) + decryptor.finalize()


def test_vector_aes_key_and_plaintext_layout() -> None:
    assert base64.b64decode(VEC_AES + "=").hex() == (
        "8d69989bbaabe67328014c194631ad0719b3dca035b64023df292447aab60760")
    plain = _plain(VEC_AES, VEC_ECHOSTR)
    assert plain[:16] == b"c41b64491c2468d0"  # platforms.md 5.1: random16
    assert struct.unpack(">I", plain[16:20]) == (19,)
    assert plain[20:39] == b"1616140317555161061"
    assert plain[39 : 39 + len(VEC_CORP)] == VEC_CORP.encode()


def test_encrypt_matches_the_vector_with_its_random_prefix() -> None:
    crypt = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, VEC_CORP)
    assert crypt.encrypt("1616140317555161061", random16=b"c41b64491c2468d0") == VEC_ECHOSTR


@pytest.mark.parametrize("text", ["", "a", "你好" * 7, "x" * 32, "😀" * 100])
def test_round_trip_and_32_byte_padding(text: str) -> None:
    crypt = WXBizMsgCrypt("tok", AIBOT_AES, "")
    encrypt = crypt.encrypt(text)
    plain = _plain(AIBOT_AES, encrypt)
    assert len(plain) % 32 == 0
    pad = plain[-1]
    assert 1 <= pad <= 32
    assert plain[-pad:] == bytes([pad]) * pad
    assert crypt.decrypt(encrypt) == text


def test_aligned_plaintext_gets_a_full_block_of_padding() -> None:
    crypt = WXBizMsgCrypt("tok", AIBOT_AES, "")
    plain = _plain(AIBOT_AES, crypt.encrypt("x" * 12))  # 16 + 4 + 12 = 32 bytes
    assert plain[-32:] == bytes([32]) * 32


def test_signature_is_sha1_of_sorted_parts() -> None:
    crypt = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, VEC_CORP)
    assert crypt.signature("1409659589", "263014780", VEC_ECHOSTR) == (
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3")
    with pytest.raises(SignatureError) as info:
        crypt.verify("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4", "1409659589", "263014780",
                     VEC_ECHOSTR)
    assert info.value.status == 401


@pytest.mark.parametrize("key", ["short", VEC_AES[:-1] + "!", VEC_AES + "A"])
def test_bad_encoding_aes_key(key: str) -> None:
    with pytest.raises(ValueError, match="EncodingAESKey"):
        WXBizMsgCrypt("t", key, "")


# ---- splitting --------------------------------------------------------------------------

def test_split_prefers_sentence_ends() -> None:
    assert split_utf8("一二。三四", 9) == ["一二。", "三四"]
    assert split_utf8("Hi there. Bye!", 12) == ["Hi there.", " Bye!"]
    assert split_utf8("line1\nline2", 8) == ["line1\n", "line2"]
    assert split_utf8("", 10) == [""]


def test_split_never_cuts_a_character() -> None:
    text = "汉" * 1000  # 3 bytes each, no boundary at all
    parts = split_utf8(text, 2048)
    assert [len(p.encode()) for p in parts] == [2046, 954]
    assert "".join(parts) == text
    emoji = split_utf8("😀" * 3, 7)
    assert emoji == ["😀", "😀", "😀"]


# ---- config -----------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "key"), [
    (app_options(corp_id=None), "bots.wc.corp_id"),
    ({k: v for k, v in app_options().items() if k != "secret"}, "bots.wc.secret"),
    (app_options(encoding_aes_key="tooshort"), "bots.wc.encoding_aes_key"),
    (app_options(colour="blue"), "bots.wc.colour"),
    (app_options(mode="bot"), "bots.wc.mode"),
    (aibot_options(aibot_token=None), "bots.wc.aibot_token"),
    (app_options(replay_window=0), "bots.wc.replay_window"),
])
def test_config_errors_name_the_key(deps: AdapterDeps, options: dict[str, object],
                                    key: str) -> None:
    with pytest.raises(ConfigError) as info:
        WeComAdapter(bot({k: v for k, v in options.items() if v is not None}), deps)
    assert info.value.key == key
    assert "tooshort" not in str(info.value)


def test_config_defaults(deps: AdapterDeps) -> None:
    adapter = WeComAdapter(bot(app_options()), deps)
    assert adapter.config.mode == "app"
    assert adapter.config.replay_window == 300
    assert adapter.config.nonce_cache is False
    assert WeComAdapter(bot(aibot_options()), deps).client is None
    assert "fake-app-secret" not in repr(adapter.config)
