"""Bytes on disk: the versioned container, its header fields, sections, CRCs and validation."""

from .container import (
    MAGIC, MAX_PIXELS, MAX_SIDE, METADATA_KINDS, VERSION, Container, Header, Section, pack, unpack,
)

__all__ = ["MAGIC", "MAX_PIXELS", "MAX_SIDE", "METADATA_KINDS", "VERSION", "Container", "Header", "Section",
           "pack", "unpack"]
