"""rewriter.charsets: what the fast paths assume of each client character set, checked
against its Python codec."""

from __future__ import annotations

import pytest

from rewriter.charsets import _STRICT, _TRANSPARENT, ClientCharset, client_charset

NAMES = sorted({*_STRICT, *_TRANSPARENT})


@pytest.mark.parametrize("name", sorted(_TRANSPARENT))
def test_single_byte_character_sets_are_those_whose_bytes_are_characters(name: str) -> None:
    """ClientCharset.single_byte: no two bytes make one character."""
    charset = client_charset(name)
    pairs = (bytes((lead, trail)) for lead in range(0x80, 0x100) for trail in range(0x21, 0x100))
    one_to_one = all(len(pair.decode(charset.codec, "surrogateescape")) == 2 for pair in pairs)
    assert charset.single_byte == one_to_one
    assert not ClientCharset("gbk", "gbk", strict=True).single_byte


@pytest.mark.parametrize("name", NAMES)
def test_ascii_text_is_written_as_its_codec_writes_it(name: str) -> None:
    """ClientCharset.encode writes ASCII text with the UTF-8 codec: the same bytes."""
    charset = client_charset(name)
    text = "".join(map(chr, range(128)))
    errors = "strict" if charset.strict else "surrogateescape"
    assert charset.encode(text) == text.encode(charset.codec, errors)
