"""What a CLIP knows of the defect words, on held-out synthetic views: zero-shot classification by caption.

Each state (normal or a defect kind) is represented by the mean of its normalised caption embeddings over the
pretraining templates (prompt ensembling); a view's state probabilities are the softmax of its cosines with
them over ``τ = 0.07``. The defect-kind accuracy is over the defect views, the argmax over the seven kinds; the
normal-vs-defect AUROC ranks the views by ``1 − p(normal)``, computed by scikit-learn.
"""

from dataclasses import dataclass

import numpy as np
import open_clip
import torch
import torch.nn.functional as F  # noqa: N812
from open_clip.model import CLIP
from sklearn.metrics import roc_auc_score

from anomalib_dapo.backbone.clip import TINY_BACKBONE
from anomalib_dapo.backbone.pretrain import DEFECT_TEMPLATES, caption, to_tensor
from anomalib_dapo.data.corpus import NORMAL, Views
from anomalib_dapo.data.synthetic import DEFECT_KINDS

TEMPERATURE = 0.07


@dataclass(frozen=True)
class WordKnowledge:
    """Zero-shot figures of one model on one set of views."""

    kind_accuracy: float
    """Share of defect views whose best-matching kind is their own (chance ``1/7``)."""
    normal_auroc: float
    """Image AUROC of normal against defective views."""
    per_kind_accuracy: dict[str, float]


@torch.no_grad()
def state_embeddings(model: CLIP, product: str) -> torch.Tensor:
    """Unit embeddings ``(1 + 7, D)`` of normal and each of :data:`DEFECT_KINDS` on ``product``, template-averaged."""
    tokenizer = open_clip.get_tokenizer(TINY_BACKBONE)
    states = []
    for state in (NORMAL, *DEFECT_KINDS):
        texts = [caption(product, state, template) for template in range(len(DEFECT_TEMPLATES))]
        states.append(F.normalize(model.encode_text(tokenizer(texts)), dim=-1).mean(dim=0))
    return F.normalize(torch.stack(states), dim=-1)


@torch.no_grad()
def word_knowledge(model: CLIP, views: Views) -> WordKnowledge:
    """Zero-shot defect-kind accuracy and normal-vs-defect AUROC of ``model`` on ``views``."""
    model.eval()
    images = F.normalize(model.encode_image(to_tensor(views.images)), dim=-1)
    products = np.asarray(views.products)
    probs = torch.empty(len(images), 1 + len(DEFECT_KINDS))
    for product in np.unique(products):
        rows = torch.from_numpy(np.flatnonzero(products == product))
        probs[rows] = (images[rows] @ state_embeddings(model, str(product)).T / TEMPERATURE).softmax(dim=-1)
    kinds = np.asarray(views.kinds)
    defective = kinds != NORMAL
    predicted = np.asarray(DEFECT_KINDS)[probs[:, 1:].argmax(dim=1).numpy()]
    correct = predicted == kinds
    return WordKnowledge(
        kind_accuracy=float(correct[defective].mean()),
        normal_auroc=float(roc_auc_score(defective, 1 - probs[:, 0].numpy())),
        per_kind_accuracy={kind: float(correct[kinds == kind].mean()) for kind in DEFECT_KINDS},
    )
