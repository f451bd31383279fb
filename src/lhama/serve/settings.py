"""Server settings: limits on what one request may ask for, authentication and batching."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    api_key: str | None = None  # None: no authentication
    allow_remote_media: bool = False  # fetch http(s) image URLs (off: only data: URIs)
    max_body_bytes: int = 16 * 1024 * 1024  # a whole request body
    max_image_bytes: int = 8 * 1024 * 1024  # one decoded image file
    max_image_pixels: int = 25_000_000  # width x height before decoding (50 Mpx photos are refused)
    max_images: int = 4  # per request
    max_audio_bytes: int = 8 * 1024 * 1024  # one decoded audio file
    max_audio_items: int = 4  # input_audio parts per request (each costs an encoder pass)
    max_video_bytes: int = 12 * 1024 * 1024  # one decoded video file (its base64 fits max_body_bytes)
    max_videos: int = 1  # per request (each costs `frames` tower passes)
    max_tokens_cap: int = 1024  # the most max_tokens a request may ask for
    default_max_tokens: int = 256  # when the request gives none
    request_timeout_s: float = 120.0  # from queueing to the last token
    max_batch: int = 8  # requests decoded together in one step (1 = one at a time)
    max_queue: int = 64  # waiting requests beyond this get HTTP 429
    remote_timeout_s: float = 10.0  # fetching one remote image
    ocr: bool | None = None  # read text in images with tesseract (lhama.data.ocr); None: when it is installed

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_image_bytes", "max_image_pixels", "max_tokens_cap",
                     "default_max_tokens", "max_batch", "max_queue"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")
