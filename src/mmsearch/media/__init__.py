"""Media decoding: turn files into what encoders take, and refuse bad input with a reason.

- ``discover``: walk files and folders, pair sidecar captions/metadata, skip what cannot be indexed.
- ``probe``: which modality a file is, from magic bytes and extension.
- ``image``: safe decoding to 8-bit RGB (EXIF rotation, alpha, CMYK, 16-bit, bombs, truncation).
- ``text``: tolerant text decoding (UTF-8/16, GB18030, cp1252) and chunking.

This package knows nothing of models or storage. Failures are
:class:`mmsearch.errors.DecodeError` with a short, user-facing ``reason``.
"""
