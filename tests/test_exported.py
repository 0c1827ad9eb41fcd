"""The export contract sits below the models and the inferencers: deploy never imports the models.

That ``import anomalib_dapo.deploy`` loads no model module is checked in a fresh interpreter, shared with the other
findings of what importing does: ``tests/test_plugin.py::test_the_inferencers_import_no_model``.
"""

from anomalib_dapo import Dapo, MultiAds
from anomalib_dapo.exported import ExportedModel


def test_both_models_offer_what_a_torch_export_must(tiny_kwargs):
    multiads = {key: value for key, value in tiny_kwargs.items() if key not in {"text_depth", "num_prompts"}}
    assert isinstance(Dapo(**tiny_kwargs), ExportedModel)
    assert isinstance(MultiAds(**multiads), ExportedModel)
    assert not isinstance(object(), ExportedModel)
