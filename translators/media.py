"""Media types and data URLs, as the client dialects read them.

No `mimetypes`: it reads system files, and translators do no I/O. Nothing here knows a dialect;
failures are ir.RequestError naming the field (`where`).
"""

from __future__ import annotations

import base64
from urllib.parse import unquote_to_bytes

from cliproxy.translators import ir

# Extension -> MIME for the image formats a client may point to by URL.
IMAGE_EXT_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
}
# Extension -> MIME for URLs and file names of any media a client may send.
EXT_MIME = {
    **IMAGE_EXT_MIME,
    "bmp": "image/bmp",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "html": "text/html",
    "json": "application/json",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp4": "video/mp4",
}


def mime_from_name(name: str, default: str, table: dict[str, str] = EXT_MIME) -> str:
    """The MIME type for a file name or URL path by its extension, else `default`."""
    _, dot, ext = name.rpartition(".")
    if not dot or "/" in ext:  # no dot in the last path segment: no extension
        return default
    return table.get(ext.lower(), default)


def parse_data_url(url: str, where: str) -> tuple[str, str]:
    """`data:<mime>[;params][;base64],<data>` -> (mime or "", base64 data)."""
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise ir.RequestError(f"{where} is not a valid data URL", where)
    params = [p.strip() for p in header.split(";")]
    mime = params[0].lower()
    if "base64" in (p.lower() for p in params[1:]):
        return mime, payload
    # percent-encoded payload: re-encode as base64, which every upstream expects
    return mime, base64.b64encode(unquote_to_bytes(payload)).decode("ascii")


def data_url(mime: str, data: str) -> str:
    """Base64 `data` of type `mime` as a data URL."""
    return f"data:{mime};base64,{data}"
