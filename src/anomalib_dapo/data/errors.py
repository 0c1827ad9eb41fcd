"""Errors for missing or misplaced dataset files, and where each dataset comes from.

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
class DatasetSource:
    """How one dataset lies on disk and where it is obtained, for error messages.

    Attributes:
        name: Name shown to the user.
        default_dir: Folder name under ``./datasets`` used when no root is given.
        layout: The expected tree below the dataset root.
        obtain: Where to get the dataset.

    """

    name: str
    default_dir: str
    layout: str
    obtain: str

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


SOURCES: dict[str, DatasetSource] = {
    "mvtec_ad": DatasetSource(
        name="MVTec-AD",
        default_dir="MVTecAD",
        layout="""
<root>/<category>/train/good/*.png
<root>/<category>/test/{good,<defect>}/*.png
<root>/<category>/ground_truth/<defect>/<NNN>_mask.png
""",
        obtain="https://www.mvtec.com/company/research/datasets/mvtec-ad (extract the archive; root is the "
        "folder holding bottle/, cable/, ...)",
    ),
    "mpdd": DatasetSource(
        name="MPDD",
        default_dir="MPDD",
        layout="""
<root>/<category>/train/good/*.png
<root>/<category>/test/{good,<defect>}/*.png
<root>/<category>/ground_truth/<defect>/<NNN>_mask.png
""",
        obtain="https://github.com/stepanje/MPDD (manual download; root is the folder holding bracket_black/, ...)",
    ),
    "visa": DatasetSource(
        name="VisA",
        default_dir="visa",
        layout="""
<root>/split_csv/1cls.csv                      (object,split,label,image,mask)
<root>/<category>/image_anno.csv               (image,label,mask)
<root>/<category>/Data/Images/{Normal,Anomaly}/*.JPG
<root>/<category>/Data/Masks/Anomaly/*.png     (pixel value v = v-th defect of the category)
""",
        obtain="https://github.com/amazon-science/spot-diff (raw release "
        "https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar; root is the extracted "
        "folder, not anomalib's binarised visa_pytorch copy)",
    ),
    "real_iad": DatasetSource(
        name="Real-IAD",
        default_dir="Real-IAD",
        layout="""
<root>/realiad_<resolution>/<category>/{OK,NG/<CODE>}/S<NNNN>/*.jpg (+ *.png masks)
<root>/realiad_jsons/<category>.json           (or realiad_jsons/realiad_jsons/<category>.json)
""",
        obtain="https://huggingface.co/datasets/REAL-IAD/Real-IAD (access on request; unzip the images of the "
        "chosen resolution and the json archive under root)",
    ),
    "mad_sim": DatasetSource(
        name="MAD-Sim",
        default_dir="MAD-Sim",
        layout="""
<root>/<NNName>/train/good/*.png
<root>/<NNName>/test/{good,Burrs,Missing,Stains}/*.png
<root>/<NNName>/ground_truth/<Defect>/<N>_mask.png
""",
        obtain="https://github.com/EricLee0224/PAD (MAD-Sim download link in its README)",
    ),
    "mad_real": DatasetSource(
        name="MAD-Real",
        default_dir="MAD-Real",
        layout="""
<root>/<Name>/train/good/*.png                 (optional)
<root>/<Name>/test/{good,Missing|Stains}/*.png
<root>/<Name>/ground_truth/<Defect>/<N>.png
""",
        obtain="https://github.com/EricLee0224/PAD (MAD-Real download link in its README)",
    ),
    "synthetic": DatasetSource(
        name="The synthetic multi-defect dataset",
        default_dir="SyntheticDefects",
        layout="""
<root>/<category>/train/good/*.png
<root>/<category>/test/{good,<defect>}/*.png
<root>/<category>/ground_truth/<defect>/<NNN>_mask.png
""",
        obtain="anomalib_dapo.data.synthetic.generate_synthetic_dataset(root) (the SyntheticDefects datamodule "
        "runs it in prepare_data)",
    ),
    "defect_folder": DatasetSource(
        name="Defect folder",
        default_dir="custom",
        layout="""
<root>/good/*.png                              (normal images)
<root>/<defect>/*.png                          (one folder per defect type)
<mask_root>/<defect>/<stem>.png or <stem>_mask.png  (binary, or indexed with mask_ids)
""",
        obtain="your own images, sorted into these folders",
    ),
}
