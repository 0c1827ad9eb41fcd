"""Reading image and mask files: any image mode as float RGB, binary and indexed (multi-id) masks.

anomalib's readers go through 8-bit RGB and luminance thresholds, which clip 16-bit images and destroy mask ids;
these keep both, and name the file whenever one cannot be read.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from anomalib.data import ImageItem, PredictDataset
from PIL import Image as PILImage
from torchvision.transforms.v2.functional import to_dtype, to_image
from torchvision.tv_tensors import Image

from anomalib_dapo.data.errors import DatasetSource

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""PIL modes of single-channel 16-bit images (``I`` is how some Pillow versions open 16-bit PNGs)."""


class ImageReadError(OSError):
    """An image file cannot be read, or holds values that are not an image's (the message names the file)."""


@contextmanager
def named_read_errors(path: str | Path, what: str = "image") -> Iterator[None]:
    """Turn the errors of reading ``path`` (missing, corrupt, truncated, not an image) into a named ImageReadError."""
    try:
        yield
    except ImageReadError:
        raise
    except FileNotFoundError as error:
        msg = f"{what.capitalize()} file not found: {path}"
        raise ImageReadError(msg) from error
    except (OSError, ValueError) as error:  # PIL's UnidentifiedImageError and truncation errors are OSErrors
        msg = f"Cannot read {what} {path} ({error}): it is corrupt, truncated or not an image; replace or remove it."
        raise ImageReadError(msg) from error


def _unit_range(path: str | Path, array: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16-bit or float single-channel image to [0, 1], refusing values that are not pixel intensities."""
    if mode in SIXTEEN_BIT_MODES:
        if array.min() < 0 or array.max() > np.iinfo(np.uint16).max:
            msg = f"{path}: a {mode} image with values outside 0..65535 is not supported; save it as 8 or 16 bit."
            raise ImageReadError(msg)
        return array / np.iinfo(np.uint16).max
    if not np.isfinite(array).all():
        msg = f"{path}: the float image holds NaN or infinite values; fix or remove the file."
        raise ImageReadError(msg)
    if array.min() < 0 or array.max() > 1:
        msg = f"{path}: float images must hold values in [0, 1], found [{array.min():g}, {array.max():g}]."
        raise ImageReadError(msg)
    return array


def read_rgb_image(path: str | Path) -> Image:
    """Read any image file as a float32 RGB tensor ``(3, H, W)`` in [0, 1].

    anomalib's ``read_image`` goes through 8-bit RGB, which clips 16-bit grayscale (PIL mode ``I;16``) to white.
    Here 16-bit grayscale is scaled by 1/65535 and float (``F``) images are taken as [0, 1]; every other mode
    goes through PIL's RGB conversion as in anomalib: grayscale replicated, palette expanded, alpha dropped,
    16-bit RGB reduced to 8 bits per channel.

    Raises:
        ImageReadError: The file is missing, corrupt, truncated or not an image, or its values are not
            intensities (NaN, infinite, out of range); the message names the file.

    """
    with named_read_errors(path), PILImage.open(path) as image:
        return pil_to_rgb(image, path)


def pil_to_rgb(image: PILImage.Image, source: str | Path) -> Image:
    """A PIL image as :func:`read_rgb_image` reads it (``source`` names it in errors)."""
    if image.mode not in (*SIXTEEN_BIT_MODES, "F"):
        return to_dtype(to_image(image.convert("RGB")), torch.float32, scale=True)
    array = _unit_range(source, np.asarray(image, dtype=np.float64), image.mode)
    return Image(torch.from_numpy(array.astype(np.float32)).expand(3, -1, -1).clone())


def read_binary_mask(path: str | Path) -> tuple[torch.Tensor, int]:
    """A binary mask ``(H, W)`` bool, foreground at half range and above, and its count of stray pixels.

    Masks hold 0 and 255 (or 0 and 1). A JPEG-compressed one also holds values near both (1–3 in the background):
    anomalib's reader takes every value above 0 as foreground, here values of at least half the range (128) are.
    Stray pixels are those of neither level.

    Raises:
        ImageReadError: The file is missing, corrupt or truncated (the message names it).

    """
    with named_read_errors(path, "mask"), PILImage.open(path) as image:
        values = np.asarray(image.convert("L"))
    full = 1 if values.max() <= 1 else 255
    stray = int(np.count_nonzero((values != 0) & (values != full)))
    return torch.from_numpy(values.astype(np.int64) * 2 > full), stray


def image_size(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an image file, from its header."""
    with named_read_errors(path), PILImage.open(path) as image:
        return image.height, image.width


class FolderImages(PredictDataset):
    """anomalib's ``PredictDataset`` (``anomalib predict --data <folder>``) reading images with :func:`read_rgb_image`.

    ``Dapo`` switches the ``PredictDataset`` that anomalib's engine builds for a folder to this class, so that
    16-bit images are scaled rather than clipped and an unreadable file is named.
    """

    def __getitem__(self, index: int) -> ImageItem:
        """Read one image (any mode and size) and apply the dataset's transform."""
        path = self.image_filenames[index]
        image = read_rgb_image(path)
        return ImageItem(image=self.transform(image) if self.transform else image, image_path=str(path))


def read_index_mask(path: str | Path, source: DatasetSource) -> torch.Tensor:
    """Read a mask whose pixel values are ids (grey, palette-indexed or equal-channel RGB PNG) as ``(H, W)`` int64.

    anomalib's ``read_mask`` converts to luminance and thresholds, which destroys ids (and palette indices).
    """
    with named_read_errors(path, "mask"), PILImage.open(path) as image:
        values, mode = np.asarray(image), image.mode
    if values.ndim == 3:
        channels = values[..., :1] if mode == "LA" else values[..., :3]
        if not (channels == channels[..., :1]).all():
            raise source.bad_layout(
                Path(path),
                "a colour mask cannot hold defect ids: save it as a grey or palette-indexed PNG whose "
                "pixel values are the ids",
            )
        values = channels[..., 0]
    return torch.from_numpy(values.astype(np.int64))
