"""Errors for missing or misplaced dataset files, naming the expected layout and where the dataset comes from.

Every loader of this package checks its folders before reading them, so a user sees the path that is
missing, the layout that was expected there and where the dataset is obtained, instead of a raw
``URLError``, ``KeyError`` or pandas traceback. Nothing is ever downloaded.
"""

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from textwrap import indent

from anomalib.data.utils.path import contains_non_printable_characters

from anomalib_dapo import knowledge


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder or file is missing."""


class DatasetLayoutError(ValueError):
    """Dataset files exist but are not laid out (or labelled) as the loader expects."""


class DatasetPathError(ValueError):
    """A dataset path that anomalib's readers refuse (characters outside printable ASCII)."""


@dataclass(frozen=True)
class DatasetSource(knowledge.DiskLayout):
    """A dataset's :class:`~anomalib_dapo.knowledge.DiskLayout` that makes the errors naming it.

    The registry's datasets get theirs from :func:`anomalib_dapo.data.registry.source`.
    """

    def _help(self) -> str:
        return f"Expected layout:\n{indent(self.layout.strip(), '  ')}\nObtain {self.name} from {self.obtain}."

    def not_found(self, path: Path, what: str) -> DatasetNotFoundError:
        """Error for a missing ``path`` (``what`` says what it should have been)."""
        message = f"{self.name} {what} not found: {path}\n{self._help()}"
        if path.parent.name == path.name and path.parent.is_dir():  # the fix last, where a console shows it
            message += (
                f"\n{path.parent} looks like that {what} itself, one level too deep: pass the folder above it as "
                f"the root, {path.parent.parent}"
            )
        return DatasetNotFoundError(message)

    def require(self, path: Path, what: str) -> Path:
        """Return ``path`` if it exists, else raise :meth:`not_found`."""
        if not path.exists():
            raise self.not_found(path, what)
        return path

    def readable_path(self, root: Path, path: Path) -> None:
        """Raise :class:`DatasetPathError` unless anomalib 2.7 reads ``path`` (below ``root``).

        anomalib's readers refuse every path with a character outside printable ASCII (as "non-printable");
        a link with an ASCII name is read through.
        """
        if not contains_non_printable_characters(path):
            return
        odd = "".join(dict.fromkeys(char for char in str(path) if not " " <= char <= "~"))
        name = unicodedata.normalize("NFKD", root.name).encode("ascii", "ignore").decode()
        link = Path("datasets") / ("".join(char for char in name if " " <= char <= "~").strip() or self.default_dir)
        msg = (
            f"{self.name} path {path} holds characters anomalib reads in no path ({odd!r}): link the dataset from "
            f"an ASCII path and pass the link as its root, e.g. ln -s '{root.absolute()}' {link}"
        )
        raise DatasetPathError(msg)

    def bad_layout(self, path: Path, problem: str) -> DatasetLayoutError:
        """Error for ``path`` that exists but does not fit the layout."""
        return DatasetLayoutError(f"{self.name} at {path}: {problem}\n{self._help()}")

    @contextmanager
    def reading(self, path: Path) -> Iterator[None]:
        """Report knowledge-base lookup failures while reading ``path`` as layout errors naming it."""
        try:
            yield
        except knowledge.KnowledgeBaseError as error:
            raise self.bad_layout(path, str(error)) from error
