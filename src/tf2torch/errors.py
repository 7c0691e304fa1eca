"""User-facing errors: each carries one line a user can act on.

The CLI prints `str(error)` and exits non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations


class Tf2TorchError(Exception):
    """Base class of every error caused by the user's input, not by a bug."""

    exit_code = 2


INTERNAL_ERROR_EXIT = 3  # an exception that is not a Tf2TorchError: a bug, said in one line
INTERRUPTED_EXIT = 130   # Ctrl-C, as shells report SIGINT


class SourceError(Tf2TorchError):
    """A model file is missing, corrupt, truncated or of an unknown format."""


class UnsafeArchiveError(SourceError):
    """An archive member would be written outside the extraction folder."""


class NoReferenceError(Tf2TorchError):
    """Nothing to verify against: no reference file was given or shipped with the source.

    Only this absence lets `convert` skip verification; a reference that is present but
    unreadable is a `SourceError`."""


class MappingError(Tf2TorchError):
    """Source tensors do not fit the target architecture (missing, extra, wrong shape)."""


class UnsupportedError(Tf2TorchError):
    """The source uses an op, layer or dtype tf2torch does not convert."""


class VerificationError(Tf2TorchError):
    """The converted model disagrees with the original above tolerance."""

    exit_code = 1


class PackageError(Tf2TorchError):
    """A model package or repository entry is missing, tampered with or malformed."""


class UsageError(Tf2TorchError):
    """Options that cannot work together, or an option the input cannot honour."""


class MissingDependencyError(Tf2TorchError):
    """An optional dependency (TensorFlow, onnxruntime, ...) is needed for this step."""


class OutputError(Tf2TorchError):
    """A results file cannot be written: it exists (and is not to be replaced) or its format
    is unknown."""
