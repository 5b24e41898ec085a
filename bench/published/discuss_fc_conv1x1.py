"""PyTorch forums "Implement Fully Connected using 1x1 Conv" (discuss.pytorch.org/t/114630): the thread's code.

Run: python bench/published/discuss_fc_conv1x1.py [--json] [--seeds N]

The thread's ``Model`` (Linear 256->64->128->256 backbone, 256->4 head) and ``ModelConv`` (the same layers as 1x1
``nn.Conv2d`` on ``x.unsqueeze(3).permute(0, 2, 1, 3)``), every weight and bias set to a constant by ``init``, on
the thread's input ``torch.manual_seed(2010); x = torch.randn(16, 5, 256)`` (batch_size 16, samples 5, input_dim
256). The retrievable text of the thread is cut after ``init`` (see README.md): the ELU after each backbone layer
and the two settings (constant 1 with ELU, constant 0.001 with sigmoid) are taken from the issue and the case's
description, not read from the thread, and are labelled so.

Printed per setting, for ``feats`` and ``logits``: max |Linear - Conv|, the largest |output|, the relative
difference max |Δ| / max |out|, and the largest elementwise relative difference |Δ| / |conv| over elements with
|conv| > sqrt(u) * max |conv| (the case's near-zero mask, without its rounding-bound part). ``--seeds N`` repeats on
inputs from seeds 2010, 0, 1, ..., N-2 to show how the numbers behind "negligible relative to magnitude" move; the
thread's follow-up (samples = 1, and a (samples x 1) kernel) is run on the thread's input.
"""

from __future__ import annotations

import argparse
import json
import math

import torch
import torch.nn
import torch.nn.functional as F


def make_models(act: type[torch.nn.Module]) -> tuple[torch.nn.Module, torch.nn.Module]:
    class Model(torch.nn.Module):
        def __init__(self, input_dim: int):
            super(Model, self).__init__()
            self._backbone = torch.nn.Sequential(
                torch.nn.Linear(input_dim, 64, bias=True), act(),
                torch.nn.Linear(64, 128, bias=True), act(),
                torch.nn.Linear(128, 256, bias=True), act())
            self._logits = torch.nn.Linear(256, 4, bias=True)

        def forward(self, x: torch.Tensor):
            feats = self._backbone(x)
            logits = self._logits(feats)
            return logits, feats

    class ModelConv(torch.nn.Module):
        def __init__(self, input_dim: int):
            super(ModelConv, self).__init__()
            self._backbone = torch.nn.Sequential(
                torch.nn.Conv2d(input_dim, 64, 1, bias=True), act(),
                torch.nn.Conv2d(64, 128, 1, bias=True), act(),
                torch.nn.Conv2d(128, 256, 1, bias=True), act())
            self._logits = torch.nn.Conv2d(256, 4, 1, bias=True)

        def forward(self, x: torch.Tensor):
            x = x.unsqueeze(3).permute(0, 2, 1, 3)
            feats = self._backbone(x)
            logits = self._logits(feats)
            feats = feats.squeeze(3).permute(0, 2, 1)
            logits = logits.squeeze(3).permute(0, 2, 1)
            return logits, feats

    return Model(256), ModelConv(256)


def compare(a: torch.Tensor, b: torch.Tensor) -> dict:
    a, b = a.detach().double(), b.detach().double()
    d = (a - b).abs()
    floor = math.sqrt(2.0 ** -24) * float(b.abs().max())
    mask = b.abs() > floor
    return {"max_abs": float(d.max()), "max_abs_out": float(b.abs().max()),
            "rel_to_magnitude": float(d.max() / b.abs().max()),
            "max_rel": float((d[mask] / b.abs()[mask]).max()) if bool(mask.any()) else None,
            "bitwise_equal_fraction": float((a == b).double().mean())}


def run_setting(x: torch.Tensor, act: type[torch.nn.Module], value: float) -> dict:
    model, model_conv = make_models(act)

    def init(m):
        if hasattr(m, 'weight'):
            torch.nn.init.constant_(m.weight, value)
        if hasattr(m, 'bias'):
            torch.nn.init.constant_(m.bias, value)

    model.apply(init)
    model_conv.apply(init)
    with torch.no_grad():
        logits, feats = model(x)
        logits_c, feats_c = model_conv(x)
    return {"feats": compare(feats, feats_c), "logits": compare(logits, logits_c)}


SETTINGS = (("elu_w1", torch.nn.ELU, 1.0), ("sigmoid_w0p001", torch.nn.Sigmoid, 0.001))


def follow_up(x: torch.Tensor) -> dict:
    """samples = 1 (a 1x1 conv then is exactly one Linear), and a (samples x 1) kernel = flatten + one Linear."""
    torch.manual_seed(0)
    w = torch.randn(4, 256, 5)
    b = torch.randn(4)
    with torch.no_grad():
        x1 = x[:, :1, :]
        lin1 = F.linear(x1, w[:, :, 0], b)
        conv1 = F.conv2d(x1.unsqueeze(3).permute(0, 2, 1, 3), w[:, :, :1, None], b).squeeze(3).permute(0, 2, 1)
        big = F.conv2d(x.unsqueeze(3).permute(0, 2, 1, 3), w[:, :, :, None], b).reshape(16, 4)
        flat = F.linear(x.permute(0, 2, 1).reshape(16, 256 * 5), w.reshape(4, 256 * 5), b)
    return {"samples1": compare(lin1, conv1), "kernel_samples_x1_vs_flatten_linear": compare(flat, big),
            "kernel_samples_x1_output_shape": list(big.shape)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seeds", type=int, default=1, help="input seeds: 2010 (the thread's), then 0, 1, ...")
    a = ap.parse_args()
    seeds = [2010] + list(range(max(0, a.seeds - 1)))
    per_seed = {}
    for seed in seeds:
        torch.manual_seed(seed)
        x = torch.randn(16, 5, 256)
        per_seed[seed] = {name: run_setting(x, act, v) for name, act, v in SETTINGS}
    torch.manual_seed(2010)
    x = torch.randn(16, 5, 256)
    res = {"source": "https://discuss.pytorch.org/t/implement-fully-connected-using-1x1-conv/114630",
           "torch": torch.__version__, "threads": torch.get_num_threads(), "published_input_seed": 2010,
           "published": per_seed[2010], "follow_up": follow_up(x)}
    if len(seeds) > 1:
        res["over_seeds"] = {str(s): v for s, v in per_seed.items()}
        res["over_seeds_summary"] = {
            f"{name}.{out}.{k}": [per_seed[s][name][out][k] for s in seeds]
            for name, _, _ in SETTINGS for out in ("feats", "logits") for k in ("max_rel", "rel_to_magnitude")}
    if a.json:
        print(json.dumps(res, indent=1))
        return
    for name, r in res["published"].items():
        for out in ("feats", "logits"):
            c = r[out]
            print(f"{name:<15} {out:<6} max|d| {c['max_abs']:.3g}  max|out| {c['max_abs_out']:.3g}  "
                  f"rel-to-magnitude {c['rel_to_magnitude']:.3g}  max elementwise rel {c['max_rel']:.3g}  "
                  f"bitwise {c['bitwise_equal_fraction']:.3f}")
    print("follow-up:", json.dumps(res["follow_up"]))
    if "over_seeds_summary" in res:
        for k, v in res["over_seeds_summary"].items():
            vals = [x for x in v if x is not None]
            print(f"over {len(seeds)} seeds {k}: min {min(vals):.3g} max {max(vals):.3g}")


if __name__ == "__main__":
    main()
