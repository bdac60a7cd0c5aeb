"""Compression codecs of output files: Hadoop's codec class names, and zlib's ``deflate``.

PySpark's ``saveAsTextFile(path, compressionCodecClass)`` names a Hadoop codec
class; aiospark writes through fsspec's codecs, so ``codec_name`` maps the class
names onto them.  fsspec has no codec for Hadoop's ``DefaultCodec`` /
``DeflateCodec`` (a zlib stream, extension ``.deflate``), so importing this
module registers one as ``"deflate"``: files written with it are read back by
``text_file`` (by their extension), as Hadoop reads them.

>>> codec_name("org.apache.hadoop.io.compress.GzipCodec"), codec_name("gzip")
('gzip', 'gzip')
>>> import io
>>> raw = io.BytesIO()
>>> with DeflateFile(raw, "wb") as out:
...     _ = out.write(b"hello\\n" * 3)
>>> zlib.decompress(raw.getvalue())
b'hello\\nhello\\nhello\\n'
>>> open_deflate(io.BytesIO(raw.getvalue()), mode="rb").read()
b'hello\\nhello\\nhello\\n'
"""

from __future__ import annotations

import io
import zlib
from typing import Any

from fsspec.compression import compr, register_compression

_HADOOP = "org.apache.hadoop.io.compress."

#: Hadoop codec class -> (fsspec codec, the package it needs).
HADOOP_CODECS: dict[str, tuple[str, str | None]] = {
    _HADOOP + "GzipCodec": ("gzip", None),
    _HADOOP + "BZip2Codec": ("bz2", None),
    _HADOOP + "DefaultCodec": ("deflate", None),
    _HADOOP + "DeflateCodec": ("deflate", None),
    _HADOOP + "Lz4Codec": ("lz4", "lz4"),
    _HADOOP + "ZStandardCodec": ("zstd", "zstandard"),
    _HADOOP + "SnappyCodec": ("snappy", "python-snappy"),
}


def codec_name(compression: str | None) -> str | None:
    """The fsspec codec for ``compression``: an fsspec name or a Hadoop codec class name.

    Other names pass through unchanged (``output.check_compression`` judges them).

    >>> codec_name("org.apache.hadoop.io.compress.DefaultCodec")
    'deflate'
    >>> codec_name("org.apache.hadoop.io.compress.NoSuchCodec")
    Traceback (most recent call last):
    ...
    ValueError: unknown Hadoop codec 'org.apache.hadoop.io.compress.NoSuchCodec'; known: ...
    """
    if compression is None or not compression.startswith(_HADOOP):
        return compression
    if compression not in HADOOP_CODECS:
        known = ", ".join(name.rsplit(".", 1)[-1] for name in HADOOP_CODECS)
        raise ValueError(f"unknown Hadoop codec {compression!r}; known: {known}")
    name, package = HADOOP_CODECS[compression]
    if name not in compr:
        raise ValueError(
            f"{compression} needs fsspec's {name!r} codec, which needs the {package!r} "
            f"package: pip install {package}"
        )
    return name


class DeflateFile(io.RawIOBase):
    """A zlib stream over a binary file (Hadoop's ``DefaultCodec``), for reading or writing.

    Closing it finishes the stream but leaves ``fileobj`` open, as ``gzip.GzipFile`` does.
    """

    def __init__(self, fileobj: Any, mode: str = "rb") -> None:
        super().__init__()
        self._file = fileobj
        self._writing = "w" in mode
        self._compress = zlib.compressobj() if self._writing else None
        self._decompress = None if self._writing else zlib.decompressobj()
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return not self._writing

    def writable(self) -> bool:
        return self._writing

    def write(self, data: Any) -> int:
        assert self._compress is not None
        self._file.write(self._compress.compress(data))
        return len(data)

    def readinto(self, buffer: Any) -> int:
        assert self._decompress is not None
        while not self._pending and not self._eof:
            chunk = self._file.read(1 << 16)
            if chunk:
                self._pending = self._decompress.decompress(chunk)
            else:
                self._pending, self._eof = self._decompress.flush(), True
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed and self._compress is not None:
            self._file.write(self._compress.flush())
        super().close()


def open_deflate(fileobj: Any, mode: str = "rb", **_: Any) -> Any:
    """fsspec's factory for the ``deflate`` codec: buffered for reading."""
    raw = DeflateFile(fileobj, mode)
    return raw if "w" in mode else io.BufferedReader(raw)


register_compression("deflate", open_deflate, "deflate", force=True)
