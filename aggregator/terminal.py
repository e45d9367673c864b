"""Text from outside made safe to store, log and print on a terminal (issue 12).

A server's reason phrase, an error text quoting a response, a header value or a feed title can
carry terminal control sequences: ``503 \\x1b]0;PWNED\\x07\\x1b[2J`` retitles the operator's
terminal and clears it when ``aggregator poll`` prints the error, when ``status`` shows it
from the database, and when someone reads the log. :func:`safe_text` removes, in that order,
whole escape sequences (CSI ``ESC [ ... final``, OSC/DCS/APC/PM/SOS strings up to BEL or ST,
two-character ``ESC x``), then every C0 control but tab (and line
feed where several lines are legitimate), DEL, C1 controls, and the Unicode line and paragraph
separators; lone surrogates (undecodable bytes) become U+FFFD. It is used where such text enters (every :class:`~aggregator.errors.AggregatorError`
message, the error columns of storage) and where it leaves (the log formatters, the CLI's
output). Pure: no IO.
"""

from __future__ import annotations

import re

# Escape sequences (ECMA-48): string commands (OSC "]", DCS "P", SOS "X", PM "^", APC "_") up
# to their terminator (BEL or ST) or the end of the text; CSI "[" with its parameters and final
# byte; any other ESC and the one character after it. An 8-bit C1 introducer (CSI is U+009B)
# is only removed itself, like every C1 control: what follows it is then plain text, and a
# stray C1 character in a mis-decoded title does not take the rest of the title with it.
_SEQUENCE = re.compile(
    r"\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROLS_BUT_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# Lone surrogates: aiohttp decodes a reason phrase with "surrogateescape", so a byte 0x9B
# arrives as U+DC9B, which no UTF-8 terminal, log file or SQLite column can take.
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def safe_text(text: object, *, newlines: bool = False) -> str:
    """``text`` (``str()`` of it) without escape sequences and control characters.

    Tabs are kept; line feeds only with ``newlines`` (a traceback, a list of config
    problems), else they become spaces, so one message stays one line. ``None`` stays ``""``.
    """
    if text is None:
        return ""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():  # the usual case: nothing to do (tab and newline are not printable)
        return value
    value = _SEQUENCE.sub("", _SURROGATES.sub("\ufffd", value))
    if newlines:
        return _CONTROLS_BUT_NEWLINE.sub(" ", value.replace("\r\n", "\n"))
    return _CONTROLS.sub(" ", value.replace("\r\n", " "))
