"""One exception hierarchy for everything a user can get wrong or a file can have wrong."""


class NeuralCodecError(Exception):
    """Base class: the CLI prints the message on one line and exits non-zero."""


class BitstreamError(NeuralCodecError):
    """A compressed file cannot be decoded."""


class NotNcfError(BitstreamError):
    """The file does not start with the container's magic bytes."""


class UnsupportedVersionError(BitstreamError):
    """The file was written by a newer, incompatible format version."""


class TruncatedFileError(BitstreamError):
    """The file ends before the data its header announces."""


class CorruptFileError(BitstreamError):
    """A checksum or a structural field does not match: the bytes were damaged."""


class InvalidHeaderError(CorruptFileError):
    """A header field is out of its allowed range (absurd dimensions, unknown ids, ...)."""


class WeightsMismatchError(BitstreamError):
    """The file was encoded with other weights than the ones installed for its model."""


class LatentMismatchError(BitstreamError):
    """Checksums pass but the decoded latents differ from the encoder's digest: the encoder computed
    other coding parameters (build, platform, device) or, in a 1.0 file, damage the CRCs missed."""


class PixelLimitError(BitstreamError):
    """The file's image has more pixels than the decoder was allowed to decode (``max_pixels``)."""


class ModelError(NeuralCodecError):
    """Unknown model id, or a model without shipped weights."""


class InputError(NeuralCodecError):
    """An input image or video cannot be read or is not supported."""


class CheckpointError(NeuralCodecError, ValueError):
    """A file that is not a readable training checkpoint (missing, empty, truncated or foreign)."""


class ReconstructionMismatchWarning(UserWarning):
    """Latents decoded exactly, but the 8-bit output is not bit-identical to the encoder's
    reconstruction (float round-off of the synthesis on another device, thread count or build)."""
