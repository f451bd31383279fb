"""Media in requests: base64 and data-URI decoding, limits checked before decoding."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from lhama.serve.errors import MediaTooLarge, RequestError
from lhama.serve.media import check_pixels, decode_base64, media_url_bytes
from lhama.serve.settings import ServeSettings

FIELD = "messages[0].content[0].image_url.url"


def image_url_bytes(url: str, field: str, settings: ServeSettings) -> bytes:
    return media_url_bytes(url, field, settings, "image", settings.max_image_bytes)  # as the API's image part reads it


def png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def test_data_uri_round_trip() -> None:
    raw = png((8, 6))
    uri = "data:image/png;base64," + base64.b64encode(raw).decode()
    assert image_url_bytes(uri, FIELD, ServeSettings()) == raw


@pytest.mark.parametrize("uri, words", [
    ("data:image/png,notbase64", "base64 data URI"),
    ("data:text/plain;base64,aGVsbG8=", "expected image/*"),
    ("data:image/png;base64,a$b=", "not valid base64"),
    ("data:image/png;base64,", "is empty"),
    ("ftp://example.com/x.png", "must be a data: URI"),
    ("https://example.com/x.png", "--allow-remote-media"),
])
def test_bad_image_urls_name_the_field(uri: str, words: str) -> None:
    with pytest.raises(RequestError, match=words) as error:
        image_url_bytes(uri, FIELD, ServeSettings())
    assert error.value.param == FIELD and str(error.value).startswith(FIELD + ": ")


def test_byte_limit_is_checked_before_decoding() -> None:
    with pytest.raises(MediaTooLarge) as error:
        decode_base64("A" * 4000, "x", max_bytes=1000)  # refused from its length alone
    assert error.value.status == 413 and "1000 bytes" in str(error.value)
    assert decode_base64(base64.b64encode(b"a" * 1000).decode(), "x", max_bytes=1000) == b"a" * 1000


def test_pixels_are_checked_from_the_header() -> None:
    check_pixels(png((64, 48)), FIELD, ServeSettings())
    with pytest.raises(RequestError, match="4000x3000 = 12000000 pixels") as error:
        check_pixels(png((4000, 3000), "1"), FIELD, ServeSettings(max_image_pixels=10_000_000))
    assert error.value.code == "image_too_large"
    with pytest.raises(RequestError, match="not an image") as error:
        check_pixels(b"GIF89a but not really", FIELD, ServeSettings())
    assert error.value.code == "invalid_image"
