"""Bytes on disk: the versioned container, its header fields, sections, CRCs and validation."""

from .container import (
    DEFAULT_MAX_PIXELS, MAGIC, MAX_PIXELS, MAX_SIDE, METADATA_KINDS, VERSION, Container, Header, Section, pack, unpack,
)

__all__ = ["DEFAULT_MAX_PIXELS", "MAGIC", "MAX_PIXELS", "MAX_SIDE", "METADATA_KINDS", "VERSION", "Container", "Header", "Section",
           "pack", "unpack"]
