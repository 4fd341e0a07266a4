"""glfd's encoder and heads in PyTorch, parameter for parameter.

Our weight files (model.safetensors + config.json) load into these modules with `load_glf_model`,
so a model trained by glfd can be used from the Python ecosystem. The same modules are the peer in
tools/bench (same model, same step).

Layout differences handled here, once:
- glfd computes in NHWC; PyTorch in NCHW. Images go in as NCHW here.
- glfd stores convolution weights as [out, kh, kw, in] (OHWI); PyTorch wants [out, in, kh, kw].
Parameter names are identical on both sides (e.g. ``encoder.stage2.block1.conv1.weight``).
"""
import json
import os

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """conv3x3(stride) -> BN+ReLU -> conv3x3 -> BN, plus identity or conv1x1+BN; then ReLU."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential()
            self.shortcut.add_module("conv", nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False))
            self.shortcut.add_module("bn", nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNetEncoder(nn.Module):
    """Mirror of Sources/Neural/Models/ResNetEncoder.swift (EncoderConfig)."""

    def __init__(self, input_channels=3, image_size=32, width=32, blocks_per_stage=(1, 1, 1, 1)):
        super().__init__()
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(input_channels, width, 3, 1, 1, bias=False))
        self.stem.add_module("bn", nn.BatchNorm2d(width))
        channels_in = width
        for stage, blocks in enumerate(blocks_per_stage):
            channels = width << stage
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                self.add_module(f"stage{stage + 1}.block{block + 1}".replace(".", "_"),
                                ResidualBlock(channels_in, channels, stride))
                channels_in = channels
        self.feature_dimension = channels_in

    def forward(self, x):  # x: [N, C, H, W]
        x = torch.relu(self.stem(x))
        for name, module in self.named_children():
            if name.startswith("stage"):
                x = module(x)
        return x.mean(dim=(2, 3))


class MLPHead(nn.Module):
    """Mirror of Sources/Neural/Models/MLPHead.swift: Linear -> BN+ReLU -> Linear (-> BN)."""

    def __init__(self, input_dimension, hidden_dimension, output_dimension, final_batch_norm=False):
        super().__init__()
        self.linear1 = nn.Linear(input_dimension, hidden_dimension)
        self.bn1 = nn.BatchNorm1d(hidden_dimension)
        self.linear2 = nn.Linear(hidden_dimension, output_dimension)
        self.bn2 = nn.BatchNorm1d(output_dimension) if final_batch_norm else None

    def forward(self, x):
        x = self.linear2(torch.relu(self.bn1(self.linear1(x))))
        return x if self.bn2 is None else self.bn2(x)


def build_encoder(config):
    """config: the "encoder" object of a glfd config.json (EncoderConfig's JSON)."""
    return ResNetEncoder(config["inputChannels"], config["imageSize"], config["width"],
                         tuple(config["blocksPerStage"]))


def torch_name(glf_name):
    """glfd's parameter name -> this module tree's state_dict key (stageS.blockB -> stageS_blockB)."""
    parts = glf_name.split(".")
    out = []
    i = 0
    while i < len(parts):
        if parts[i].startswith("stage") and i + 1 < len(parts) and parts[i + 1].startswith("block"):
            out.append(parts[i] + "_" + parts[i + 1])
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return ".".join(out)


def glf_to_torch_tensor(tensor):
    """OHWI convolution weights -> OIHW; everything else unchanged."""
    return tensor.permute(0, 3, 1, 2).contiguous() if tensor.dim() == 4 else tensor


def load_state(module, prefix, tensors):
    """Loads the tensors named `prefix.*` from a glfd safetensors dict into `module`, strictly."""
    state = {}
    for name, tensor in tensors.items():
        if name.startswith(prefix + "."):
            state[torch_name(name[len(prefix) + 1:])] = glf_to_torch_tensor(tensor)
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"weight file does not match the model: missing {missing}, unexpected {unexpected}")
    return module


def load_glf_model(directory):
    """Loads model.safetensors + config.json written by glfd; returns (encoder, config)."""
    from safetensors.torch import load_file

    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    tensors = load_file(os.path.join(directory, "model.safetensors"))
    encoder = load_state(build_encoder(config["encoder"]), "encoder", tensors)
    return encoder.eval(), config
