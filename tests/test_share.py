import pytest
import torch
from lightning.pytorch import Trainer

from anomalib_dapo import Dapo
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.share import ShareError, main, share


@pytest.fixture(scope="module")
def training_checkpoint(tmp_path_factory, tiny_kwargs):
    """A checkpoint as ``anomalib train`` leaves it: learned tensors after an Adam step, and Adam's state."""
    dapo = Dapo(**tiny_kwargs)
    dapo.use_vocabulary(("scratch",))
    dapo.model.train()
    optimizer = dapo.configure_optimizers()
    batch = TypedImageBatch(
        image=torch.randn(2, 3, 64, 64), gt_label=torch.tensor([0, 1]), gt_type_mask=torch.ones(2, 64, 64).long()
    )
    dapo.training_loss(batch, batch.gt_type_mask).backward()
    optimizer.step()
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(dapo)
    trainer.optimizers = [optimizer]
    path = tmp_path_factory.mktemp("run") / "model.ckpt"
    trainer.save_checkpoint(path)
    return path, dapo


def test_the_shared_file_holds_the_learned_weights_without_adams_state(training_checkpoint, tmp_path, tiny_kwargs):
    source, trained = training_checkpoint
    target = share(source, tmp_path / "learned.ckpt")
    learned = sum(p.numel() * p.element_size() for p in trained.model.parameters() if p.requires_grad)
    shared, full = torch.load(target, weights_only=False), torch.load(source, weights_only=False)
    assert "optimizer_states" not in shared
    assert len(full["optimizer_states"][0]["state"]) == 6  # Adam's two moments of each of the 6 learned tensors
    # Adam's moments double the learned bytes; the shared file is the learned bytes and small metadata
    assert target.stat().st_size < learned * 1.5 < source.stat().st_size
    reloaded = Dapo(**tiny_kwargs, weights=str(target))
    for (name, ours), theirs in zip(reloaded.model.named_parameters(), trained.model.parameters(), strict=True):
        assert torch.equal(ours, theirs), name


def test_sharing_never_overwrites_and_names_a_wrong_source(training_checkpoint, tmp_path, capsys):
    source, _ = training_checkpoint
    existing = tmp_path / "learned.ckpt"
    existing.write_bytes(b"keep me")
    with pytest.raises(ShareError, match="exists"):
        share(source, existing)
    assert existing.read_bytes() == b"keep me"
    text = tmp_path / "config.yaml"
    text.write_text("model: Dapo\n")
    with pytest.raises(SystemExit):
        main([str(text), str(tmp_path / "new.ckpt")])
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "new.ckpt").exists()
