"""MVTec-AD with per-pixel defect types: anomalib's MVTec-AD dataset and datamodule, typed by test folder."""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from anomalib.data.datamodules.image.mvtecad import MVTecAD
from anomalib.data.datasets.image.mvtecad import MVTecADDataset
from anomalib.data.errors import MisMatchError
from anomalib.data.utils import Split

from anomalib_dapo import knowledge
from anomalib_dapo.data.datamodule_base import TypedDataModule
from anomalib_dapo.data.dataset_base import NORMAL_FOLDER, TypedDatasetMixin, known_types
from anomalib_dapo.data.registry import source
from anomalib_dapo.knowledge import DatasetSpec
from anomalib_dapo.knowledge.datasets import MVTEC_AD


def _pairing_problems(category_dir: Path) -> str:
    """Anomalous test images without a mask and masks without an image (MVTec-AD pairs them by name)."""
    images = {f"{p.parent.name}/{p.stem}" for p in category_dir.glob("test/*/*") if p.parent.name != NORMAL_FOLDER}
    masks = {f"{p.parent.name}/{p.stem.removesuffix('_mask')}" for p in category_dir.glob("ground_truth/*/*")}
    unpaired = {"test images without a mask": images - masks, "masks without a test image": masks - images}
    problems = [f"{what} ({len(names)}): {', '.join(sorted(names)[:5])}" for what, names in unpaired.items() if names]
    if not images | masks:
        problems.append("no test images and no masks")
    return "; ".join(problems)


class TypedMVTecADDataset(TypedDatasetMixin, MVTecADDataset):
    """anomalib's MVTec-AD dataset with per-pixel defect types from the ``test/<defect>/`` folders.

    Also serves every dataset laid out like MVTec-AD (the built-in synthetic set, one of your own in the
    registry): pass ``dataset`` to pick the registry entry that maps its folder names to types.

    Args:
        root: Dataset root holding one folder per category. Defaults to ``./datasets/<the spec's folder>``.
        category: Category, e.g. ``bottle``.
        augmentations: Augmentations applied to image and type mask together.
        split: ``train``, ``test`` or ``None`` for both.
        dataset: Registry dataset (name or spec). Defaults to the class's ``spec``, MVTec-AD.
        defect_types: Vocabulary to index the types with. Defaults to the category's types in the knowledge base.

    """

    spec: ClassVar[DatasetSpec] = MVTEC_AD

    def __init__(
        self,
        root: Path | str | None = None,
        category: str = "bottle",
        augmentations: Callable | None = None,
        split: str | Split | None = None,
        dataset: str | DatasetSpec | None = None,
        defect_types: Sequence[str] | None = None,
    ) -> None:
        spec = knowledge.spec(dataset) if dataset is not None else self.spec
        where = Path(root or Path("./datasets") / spec.disk.default_dir) / category
        source(spec).readable_path(where.parent, where)
        try:
            super().__init__(root=where.parent, category=category, augmentations=augmentations, split=split)
        except (RuntimeError, ValueError, MisMatchError) as error:  # anomalib's raw "Found 0 images" or pandas error
            raise source(spec).bad_layout(where, _pairing_problems(where) or str(error)) from error
        # An unknown defect folder names the folder.
        self.defect_types = known_types(self.samples, spec, category, defect_types, self.root_category)
        self.check_masks()


class TypedMVTecAD(TypedDataModule, MVTecAD):
    """anomalib's MVTecAD datamodule whose items carry ``gt_type_mask`` (same arguments as ``MVTecAD``)."""

    spec: ClassVar[DatasetSpec] = MVTEC_AD

    @property
    def category(self) -> str:
        """The category (product), one the dataset has: an unknown one fails when the datamodule is made."""
        return self._category

    @category.setter
    def category(self, category: str) -> None:
        knowledge.vocabulary(self.spec, category)  # names the known categories, and DefectFolder for others
        self._category = category
