"""Statement bytes to text and back, in the session's character set (character_set_client).

The server reads a statement in the client's character set, and so must the proxy: in
gbk, big5, sjis, cp932 and gb18030 a byte such as 0x5C (backslash) or 0x27 (quote) can be
the second byte of a character, so reading those bytes as UTF-8 would put a string's end
where the server sees none. Those character sets are decoded strictly, and a statement
that does not decode, or does not encode back to the same bytes, is not read at all.
Every other client character set is ASCII-compatible byte by byte (no byte below 0x80 is
ever part of a longer character): it is decoded with ``surrogateescape``, which keeps
every byte, so the bytes written back are the client's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewriter.lexer import UnreadableStatement


@dataclass(frozen=True)
class ClientCharset:
    """How one MySQL character set's statements are decoded and encoded."""

    name: str
    codec: str
    #: Bytes below 0x80 can be part of a multibyte character: decode strictly.
    strict: bool = False

    @property
    def single_byte(self) -> bool:
        """Every byte is one character (so decoding with surrogateescape maps bytes to
        characters one to one)."""
        return not self.strict and self.codec not in _MULTIBYTE_TRANSPARENT

    def decode(self, sql: bytes) -> str:
        if not self.strict:
            return sql.decode(self.codec, "surrogateescape")
        try:
            text = sql.decode(self.codec)
        except UnicodeDecodeError as exc:
            raise UnreadableStatement(f"bytes that are not {self.name} text") from exc
        if text.encode(self.codec) != sql:
            raise UnreadableStatement(f"{self.name} bytes that do not encode back the same")
        return text

    def encode(self, text: str) -> bytes:
        if text.isascii():  # each of these writes ASCII as ASCII, and UTF-8's codec is fastest
            return text.encode()
        try:
            return text.encode(self.codec, "strict" if self.strict else "surrogateescape")
        except UnicodeEncodeError as exc:
            raise UnreadableStatement(f"text that {self.name} cannot hold") from exc


_STRICT = {"big5": "big5", "sjis": "shift_jis", "cp932": "cp932", "gbk": "gbk"}
_STRICT["gb18030"] = "gb18030"

#: ASCII-compatible character sets and their Python codecs; those Python lacks are read
#: byte for byte (latin-1), which keeps their structure and their bytes.
_TRANSPARENT = {
    "utf8mb4": "utf-8",
    "utf8mb3": "utf-8",
    "utf8": "utf-8",
    "latin1": "cp1252",
    "latin2": "iso8859_2",
    "latin5": "iso8859_9",
    "latin7": "iso8859_13",
    "ascii": "ascii",
    "binary": "latin-1",
    "ujis": "euc_jp",
    "eucjpms": "euc_jp",
    "euckr": "euc_kr",
    "gb2312": "gb2312",
    "koi8r": "koi8_r",
    "koi8u": "koi8_u",
    "greek": "iso8859_7",
    "hebrew": "iso8859_8",
    "tis620": "tis_620",
    "cp1250": "cp1250",
    "cp1251": "cp1251",
    "cp1256": "cp1256",
    "cp1257": "cp1257",
    "cp850": "cp850",
    "cp852": "cp852",
    "cp866": "cp866",
    "macce": "mac_latin2",
    "macroman": "mac_roman",
    "dec8": "latin-1",
    "hp8": "latin-1",
    "swe7": "latin-1",
    "armscii8": "latin-1",
    "keybcs2": "latin-1",
    "geostd8": "latin-1",
}

#: The codecs of _TRANSPARENT whose characters may take more than one byte (all >= 0x80).
_MULTIBYTE_TRANSPARENT = frozenset({"utf-8", "euc_jp", "euc_kr", "gb2312"})

UTF8 = ClientCharset("utf8mb4", "utf-8")


def client_charset(name: str) -> ClientCharset:
    """The decoding of a ``character_set_client``; UnreadableStatement for one the proxy
    does not know (the server refuses ucs2, utf16 and utf32 as client character sets).

    >>> client_charset("gbk").decode(bytes.fromhex("bf5c27"))
    "縗'"
    >>> client_charset("latin1").encode(client_charset("latin1").decode(b"caf\\xe9\\x81"))
    b'caf\\xe9\\x81'
    """
    key = name.strip().lower()
    if key in _STRICT:
        return ClientCharset(key, _STRICT[key], strict=True)
    if key in _TRANSPARENT:
        codec = _TRANSPARENT[key]
        return ClientCharset(key, codec)
    raise UnreadableStatement(f"the client character set {name!r}")
