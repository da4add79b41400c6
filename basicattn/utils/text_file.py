"""Reading the small text files users give (meta info and clip lists) with one-line errors."""

import os
from typing import List

from basicattn.errors import DataError


def read_text_lines(path, what: str = 'text file') -> List[str]:
    """The lines of a UTF-8 text file (a byte-order mark is allowed).

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as when a file is read in
    text mode; the line ends are removed.

    Args:
        path (str | os.PathLike): The file.
        what (str): What the file is, for the message (``'meta info file'``).

    Returns:
        list[str]: Its lines.

    Raises:
        DataError: The file is not UTF-8 text (binary content, another
            encoding): names the file, the byte offset and the line.
    """
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError as err:
        line = raw.count(b'\n', 0, err.start) + 1
        raise DataError(
            f'{what} {os.fspath(path)}: not UTF-8 text: byte 0x{raw[err.start]:02x} at byte '
            f'offset {err.start} (line {line}); save it as UTF-8 (is this the right file?)'
        ) from None
    return text.replace('\r\n', '\n').replace('\r', '\n').split('\n')
