"""anomalib's image visualizer with defect-type panels and a legend naming the types."""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from anomalib.data import ImageBatch, ImageItem, NumpyImageBatch, NumpyImageItem
from anomalib.utils.path import generate_output_filename
from anomalib.visualization import ImageVisualizer, visualize_image_item
from anomalib.visualization.image.functional import add_text_to_image, dynamic_font_size
from PIL import Image

from anomalib_dapo.visualization.type_overlay import overlay_type_mask, type_legend_entries, with_legend

if TYPE_CHECKING:
    from anomalib.models import AnomalibModule
    from lightning.pytorch import Trainer

TYPE_PANELS = (("gt_type_mask", "Ground Truth Types"), ("pred_type_mask", "Predicted Types"))
"""The type-mask fields drawn as panels, in order, with their titles; a field an item lacks is skipped."""


class TypeVisualizer(ImageVisualizer):
    """Anomalib's picture of each image, followed by its ground-truth and predicted defect types.

    Every saved picture is anomalib's row of panels (image, ground truth, anomaly map, predicted mask, as
    configured) with a "Ground Truth Types" and a "Predicted Types" panel appended, each type coloured in over
    the image, and below the row a legend naming the types present in either panel. Pictures are saved under
    the names anomalib gives them, mirroring the dataset's folders, in ``<results>/images`` for the first run
    and ``images_2``, ``images_3``, … for later test or predict runs into the same results folder, so that no
    earlier picture is overwritten (unless ``output_dir`` is given: then there, as anomalib does).

    Args:
        vocabulary: Type names (type ``k`` is ``vocabulary[k - 1]``). The plugin's models set it to the
            vocabulary of each stage. Defaults to ``()``.
        type_alpha: Opacity of the type colours over the image.
        **kwargs: :class:`~anomalib.visualization.ImageVisualizer`'s arguments.

    """

    def __init__(self, vocabulary: Sequence[str] = (), type_alpha: float = 0.6, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocabulary = tuple(vocabulary)
        self.type_alpha = type_alpha
        self.versioned = self.output_dir is None

    def on_test_start(self, trainer: "Trainer", pl_module: "AnomalibModule") -> None:
        """Pick a picture folder of this run's own; ``on_predict_start`` lands here too."""
        del pl_module
        if self.versioned:
            self.output_dir = new_picture_folder(Path(trainer.default_root_dir))

    def on_predict_start(self, trainer: "Trainer", pl_module: "AnomalibModule") -> None:
        """As :meth:`on_test_start`."""
        self.on_test_start(trainer, pl_module)

    def visualize(
        self,
        predictions: ImageItem | NumpyImageItem | ImageBatch | NumpyImageBatch,
    ) -> Image.Image | list[Image.Image | None] | None:
        """One picture per item, as :meth:`ImageVisualizer.visualize` (a single picture for a one-item batch)."""
        if isinstance(predictions, ImageBatch | NumpyImageBatch):
            pictures = [self.visualize_item(item) for item in predictions]
            return pictures[0] if len(pictures) == 1 else pictures
        return self.visualize_item(predictions)

    def visualize_item(self, item: ImageItem | NumpyImageItem) -> Image.Image | None:
        """The picture of ``item``: anomalib's panels, then the type panels and their legend (if it has type masks)."""
        picture = super().visualize(item)
        masks = [(mask, title) for field, title in TYPE_PANELS if (mask := getattr(item, field, None)) is not None]
        if picture is None or not masks:
            return picture
        image = visualize_image_item(item, fields=["image"], field_size=self.field_size, text_config={"enable": False})
        text_config = dict(self.text_config)
        add_text = text_config.pop("enable", True)
        panels = [picture]
        for mask, title in masks:
            panel = overlay_type_mask(image, mask, self.type_alpha)
            panels.append(add_text_to_image(panel, title, **text_config) if add_text else panel)
        row = Image.new("RGB", (sum(panel.width for panel in panels), picture.height), "white")
        x = 0
        for panel in panels:
            row.paste(panel, (x, 0))
            x += panel.width
        entries = type_legend_entries(self.vocabulary, [mask for mask, _ in masks])
        return with_legend(row, entries, font_size=dynamic_font_size(self.field_size))

    def on_test_batch_end(
        self,
        trainer: "Trainer",
        pl_module: "AnomalibModule",
        outputs: ImageBatch,
        batch: ImageBatch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Save the picture of every item of the batch; ``on_predict_batch_end`` lands here too."""
        del pl_module, batch, batch_idx, dataloader_idx
        if self.output_dir is None:
            self.output_dir = Path(trainer.default_root_dir) / "images"
        datamodule = getattr(trainer, "datamodule", None)
        # Dapo returns a typed copy of stock batches (an image folder's), so only ``outputs`` has the predictions.
        for item in outputs:
            picture = self.visualize_item(item)
            if picture is not None:
                filename = generate_output_filename(
                    input_path=item.image_path or "",
                    output_path=self.output_dir,
                    dataset_name=getattr(datamodule, "name", None),
                    category=getattr(datamodule, "category", None),
                )
                picture.save(filename)


def new_picture_folder(results: Path) -> Path:
    """``results/images`` if it is not there yet, else the first free ``images_<n>`` (n = 2, 3, …)."""
    folder, version = results / "images", 1
    while folder.exists():
        version += 1
        folder = results / f"images_{version}"
    return folder
