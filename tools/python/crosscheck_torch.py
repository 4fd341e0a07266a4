#!/usr/bin/env python3
"""Cross-checks glfd's encoder and weight files against PyTorch (tools/python/glf_torch.py).

For each encoder configuration:
  1. glf -> torch: `glf weights init` writes a model directory (batch-norm statistics warmed up),
     `glf weights embed` encodes random NHWC images; glf_torch.load_glf_model loads the same
     directory and encodes the same images (NCHW, eval mode). The features must agree.
  2. torch -> glf: a PyTorch encoder with random weights and statistics is written by
     safetensors.torch.save_file (its own tensor order and metadata) in our names and layout;
     `glf weights embed` must read it and agree with PyTorch.

Prints ||ours - torch|| / ||torch|| over all features and for the worst row (image), against the
float32 and the float64 PyTorch run, and exits 1 if any of them is >= 1e-4.

    python3 tools/python/crosscheck_torch.py [--glf PATH] [--scratch-path DIR] [--images N]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glf_torch  # noqa: E402

REPOSITORY = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOLERANCE = 1e-4
CONFIGS = [
    dict(width=32, blocks=[1, 1, 1, 1], size=32, channels=3),   # the default encoder
    dict(width=8, blocks=[2, 1], size=16, channels=1),
]


def build_glf(scratch_path):
    """Builds glf in release (incremental: cheap when up to date); returns the binary's path."""
    command = ["swift", "build", "-c", "release", "--product", "glf"]
    if scratch_path:
        command += ["--scratch-path", scratch_path]
    subprocess.run(command, cwd=REPOSITORY, check=True, stdout=subprocess.DEVNULL)
    bin_path = subprocess.run(command + ["--show-bin-path"], cwd=REPOSITORY, check=True,
                              capture_output=True, text=True).stdout.strip()
    return os.path.join(bin_path, "glf")


def run(glf, *arguments):
    result = subprocess.run([glf, *map(str, arguments)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"glf {' '.join(map(str, arguments))} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return result.stdout


def relative_errors(ours, reference):
    """(overall, worst row) of ||ours - reference|| / ||reference||, computed in float64."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    overall = np.linalg.norm(ours - reference) / np.linalg.norm(reference)
    rows = np.linalg.norm(ours - reference, axis=1) / np.linalg.norm(reference, axis=1)
    return overall, rows.max()


def torch_features(encoder, images_nhwc):
    """Features from the PyTorch mirror in eval mode, in float32 and in float64."""
    images = torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).contiguous()   # NHWC -> NCHW
    encoder = encoder.eval()
    with torch.no_grad():
        single = encoder(images).numpy()
        double = encoder.double()(images.double()).numpy()
    encoder.float()
    return single, double


def report(label, ours, single, double):
    """Prints one line; returns whether it is within tolerance."""
    errors = relative_errors(ours, single) + relative_errors(ours, double)
    ok = max(errors) < TOLERANCE and np.isfinite(errors).all()
    print(f"{label}: rel. error vs torch f32 overall {errors[0]:.2e}, worst row {errors[1]:.2e}; "
          f"vs torch f64 overall {errors[2]:.2e}, worst row {errors[3]:.2e}  {'OK' if ok else 'FAIL'}")
    return ok


def glf_name(torch_key):
    """The inverse of glf_torch.torch_name: stageS_blockB -> stageS.blockB."""
    return re.sub(r"\bstage(\d+)_block(\d+)\b", r"stage\1.block\2", torch_key)


def write_torch_model(encoder, config, directory):
    """Writes a PyTorch encoder as a glfd model directory with safetensors' own writer."""
    tensors = {}
    for key, tensor in encoder.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue   # an int64 counter PyTorch keeps; glfd does not
        name = "encoder." + glf_name(key)
        assert glf_torch.torch_name(name[len("encoder."):]) == key
        tensors[name] = tensor.permute(0, 2, 3, 1).contiguous() if tensor.dim() == 4 else tensor.contiguous()  # OIHW -> OHWI
    os.makedirs(directory, exist_ok=True)
    save_file(tensors, os.path.join(directory, "model.safetensors"), metadata={"writer": "safetensors.torch"})
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump({"format": "glfd-model", "formatVersion": 1, "layout": "NHWC, convolution weights OHWI",
                   "encoder": {"inputChannels": config["channels"], "imageSize": config["size"],
                               "width": config["width"], "blocksPerStage": config["blocks"]}}, f)


def randomize(encoder, generator):
    """Random weights and batch-norm statistics, so that no tensor can be swapped unnoticed."""
    with torch.no_grad():
        for name, tensor in encoder.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("weight") and tensor.dim() == 1:   # BN scale
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                scale = 0.1 if tensor.dim() == 1 else (2 / tensor[0].numel()) ** 0.5
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--glf", help="a glf binary (default: build it with swift build -c release)")
    parser.add_argument("--scratch-path", help="SwiftPM scratch path for the build (default: .build)")
    parser.add_argument("--images", type=int, default=48, help="images per check")
    arguments = parser.parse_args()

    torch.set_num_threads(1)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    glf = arguments.glf or build_glf(arguments.scratch_path)
    print(f"glf: {glf}; torch {torch.__version__}; tolerance {TOLERANCE:g}")
    rng = np.random.default_rng(0)
    all_ok = True
    with tempfile.TemporaryDirectory(prefix="glf-crosscheck-") as temporary:
        for index, config in enumerate(CONFIGS):
            blocks = ",".join(map(str, config["blocks"]))
            description = f"width {config['width']}, blocks {blocks}, {config['size']}x{config['size']}x{config['channels']}"
            images = rng.standard_normal((arguments.images, config["size"], config["size"], config["channels"]),
                                         dtype=np.float32)
            images_path = os.path.join(temporary, f"images{index}.npy")
            np.save(images_path, images)

            # 1. glf writes the model, both sides encode.
            model = os.path.join(temporary, f"glf{index}")
            run(glf, "weights", "init", "--out", model, "--width", config["width"], "--blocks", blocks,
                "--size", config["size"], "--channels", config["channels"], "--seed", index)
            features_path = os.path.join(temporary, f"glf{index}-features.npy")
            run(glf, "weights", "embed", "--model", model, "--images", images_path, "--out", features_path)
            ours = np.load(features_path)
            encoder, _ = glf_torch.load_glf_model(model)
            assert ours.shape == (arguments.images, encoder.feature_dimension), ours.shape
            all_ok &= report(f"glf -> torch  ({description})", ours, *torch_features(encoder, images))

            # 2. safetensors.torch writes the model, both sides encode.
            encoder = glf_torch.build_encoder({"inputChannels": config["channels"], "imageSize": config["size"],
                                               "width": config["width"], "blocksPerStage": config["blocks"]})
            randomize(encoder, torch.Generator().manual_seed(100 + index))
            model = os.path.join(temporary, f"torch{index}")
            write_torch_model(encoder, config, model)
            run(glf, "weights", "show", "--model", model)   # reads the same file, prints the table
            features_path = os.path.join(temporary, f"torch{index}-features.npy")
            run(glf, "weights", "embed", "--model", model, "--images", images_path, "--out", features_path)
            all_ok &= report(f"torch -> glf  ({description})", np.load(features_path), *torch_features(encoder, images))

    print("all checks passed" if all_ok else f"FAILED: some relative error >= {TOLERANCE:g}")
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
