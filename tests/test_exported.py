"""The export contract sits below the models and the inferencers: deploy never imports the models."""

import subprocess
import sys

from anomalib_dapo import Dapo, MultiAds
from anomalib_dapo.exported import ExportedModel


def test_the_inferencers_import_no_model():
    code = "import sys, anomalib_dapo.deploy; print([m for m in sys.modules if m.startswith('anomalib_dapo.models')])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.strip() == "[]"


def test_both_models_offer_what_a_torch_export_must(tiny_kwargs):
    multiads = {key: value for key, value in tiny_kwargs.items() if key not in {"text_depth", "num_prompts"}}
    assert isinstance(Dapo(**tiny_kwargs), ExportedModel)
    assert isinstance(MultiAds(**multiads), ExportedModel)
    assert not isinstance(object(), ExportedModel)
