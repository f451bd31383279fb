"""Media inside requests -> bytes, with the server's limits checked before any
expensive decoding (byte size before base64 decoding, pixel count before decompressing).

Every failure is a :class:`RequestError` naming the request field it came from.
"""

from __future__ import annotations

import base64
import binascii
import io
import urllib.error
import urllib.request

from PIL import Image, UnidentifiedImageError

from lhama.serve.errors import MediaTooLarge, RequestError
from lhama.serve.settings import ServeSettings


def decode_base64(data: str, field: str, max_bytes: int) -> bytes:
    """Strictly decode base64 text, refusing it before decoding if it would exceed ``max_bytes``."""
    if len(data) * 3 // 4 > max_bytes + 3:
        raise MediaTooLarge(f"the item is larger than the server's limit of {max_bytes} bytes", field, "media_too_large")
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("is not valid base64", field, "invalid_base64") from None
    if not raw:
        raise RequestError("is empty", field, "invalid_base64")
    if len(raw) > max_bytes:
        raise MediaTooLarge(f"the item is larger than the server's limit of {max_bytes} bytes", field, "media_too_large")
    return raw


def media_url_bytes(url: str, field: str, settings: ServeSettings, kind: str, limit: int) -> bytes:
    """The file bytes behind a URL part (``image_url``, ``video_url``): a base64 ``data:`` URI of
    media type ``kind``/*, or (only when ``settings.allow_remote_media``) an http(s) URL fetched
    with a time limit; at most ``limit`` bytes."""
    code = f"invalid_{kind}_url"
    if url.startswith("data:"):
        header, comma, payload = url.partition(",")
        if not comma or not header.endswith(";base64"):
            raise RequestError(f"must be a base64 data URI: data:{kind}/<type>;base64,<data>", field, code)
        if not header[5:].startswith(f"{kind}/"):
            raise RequestError(f"has media type {header[5:-7]!r}; expected {kind}/*", field, code)
        return decode_base64(payload, field, limit)
    if url.startswith(("http://", "https://")):
        if not settings.allow_remote_media:
            raise RequestError(
                f"remote {kind} URLs are disabled on this server; send the {kind} inline as a data: URI "
                "(or start the server with --allow-remote-media)", field, "remote_media_disabled",
            )
        return _fetch(url, field, settings, limit)
    raise RequestError("must be a data: URI (or an http(s) URL with --allow-remote-media)", field, code)


def _fetch(url: str, field: str, settings: ServeSettings, limit: int) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=settings.remote_timeout_s) as response:  # noqa: S310 (http(s) only)
            data = response.read(limit + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RequestError(f"cannot fetch {url}: {exc}", field, "remote_media_failed") from None
    if len(data) > limit:
        raise MediaTooLarge(f"the file is larger than the server's limit of {limit} bytes", field, "media_too_large")
    return data


def check_pixels(data: bytes, field: str, settings: ServeSettings) -> None:
    """Refuse image bytes PIL cannot identify, or whose header says more pixels than the server
    accepts, before anything is decompressed."""
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            width, height = probe.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise RequestError("is not an image PIL can read (PNG, JPEG, WebP, GIF...)", field, "invalid_image") from None
    if width * height > settings.max_image_pixels:
        raise RequestError(
            f"the image is {width}x{height} = {width * height} pixels; this server accepts at most "
            f"{settings.max_image_pixels}", field, "image_too_large",
        )
