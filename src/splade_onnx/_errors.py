"""Every error splade-onnx raises, in one tree.

Each class derives from :class:`SpladeError`, so ``except SpladeError`` catches anything
the library raises on purpose, and also from the built-in exception that callers
already catch, so ``except ValueError`` (or ``OSError``, ``TypeError``, ...) keeps working::

    SpladeError
    ├── ArgumentError            (ValueError)        an argument's value is outside what is allowed
    │   └── InputError           (ValueError)        malformed input data; names the file and line
    ├── ArgumentTypeError        (TypeError)         an argument of the wrong type, or an unknown option
    ├── FileMissingError         (FileNotFoundError) a file the library needs is not there
    ├── ModelNotFoundError       (OSError)           no source could provide the model
    ├── SourceError              (OSError)           a model source failed (download, checksum, cache)
    ├── ModelError               (ValueError)        model files that cannot be read or converted
    ├── ModelMismatchError       (ValueError)        a saved index was built by another model
    ├── IndexFormatError         (ValueError)        a saved index that is corrupt, malformed or too new
    ├── UnknownIdError           (KeyError)          document ids that are not in the index
    ├── CapacityError            (OverflowError)     past a hard size limit
    └── MissingExtraError        (ImportError)       an optional dependency is missing; names the pip extra

The command line maps them to exit codes: usage errors 2, malformed input (``InputError``,
``IndexFormatError``) 3, anything else 1.
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "CapacityError",
    "FileMissingError",
    "IndexFormatError",
    "InputError",
    "MissingExtraError",
    "ModelError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "SourceError",
    "SpladeError",
    "UnknownIdError",
    "missing_extra",
]


class SpladeError(Exception):
    """Base class of every error splade-onnx raises."""


class ArgumentError(SpladeError, ValueError):
    """An argument's value is outside what is allowed; the message says what is allowed."""


class InputError(ArgumentError):
    """Malformed input data; the message names the file and line (or the position in a list)."""


class ArgumentTypeError(SpladeError, TypeError):
    """An argument of the wrong type, or an unknown keyword option (the message lists the valid ones)."""


class FileMissingError(SpladeError, FileNotFoundError):
    """A file the library needs is missing; the message names it and what was expected."""


class ModelNotFoundError(SpladeError, OSError):
    """No source could provide the model; the message lists every source tried."""


class SourceError(SpladeError, OSError):
    """One model source failed: a download, a checksum, a cache entry."""


class ModelError(SpladeError, ValueError):
    """Model files that cannot be read, converted or encoded exactly."""


class ModelMismatchError(SpladeError, ValueError):
    """A saved index or retriever was built by another model than the one given to load it."""


class IndexFormatError(SpladeError, ValueError):
    """A saved index that is corrupt, malformed, or written by a newer splade-onnx."""


class UnknownIdError(SpladeError, KeyError):
    """Document ids that are not in the index."""

    def __str__(self) -> str:  # KeyError's str() is the repr of its argument
        return str(self.args[0]) if self.args else ""


class CapacityError(SpladeError, OverflowError):
    """A hard size limit was reached."""


class MissingExtraError(SpladeError, ImportError):
    """An optional dependency is missing; the message names the ``pip install`` that adds it."""


def missing_extra(what: str, package: str, extra: str, cause: ImportError) -> MissingExtraError:
    """The error for ``what`` needing ``pip install '<package>[<extra>]'``, chained to ``cause``."""
    err = MissingExtraError(f"{what} needs the [{extra}] extra: pip install '{package}[{extra}]' ({cause})")
    err.__cause__ = cause
    return err
