"""MindSpore side of the ``conv1d_cross_framework`` case. Runs in MindSpore's own environment (numpy<2).

Imports only the standard library, numpy and mindspore (plus the sibling ``_probe_io``): never torch or
reportgen. It reports what the installed MindSpore does -- defaults read from a constructed layer, padding
splits and shapes from real forward passes, default parameters as raw samples -- and leaves every judgement
(statistics, comparisons against torch, verdicts) to the parent.

Inputs: ``x`` (N, C_in, L), ``w`` (C_out, C_in, k) and ``b`` (C_out,) in float32, in PyTorch's layout.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import time

import numpy as np

import _probe_io

# MindSpore logs warnings through glog on stderr; keep stderr for real errors (level 3 = ERROR).
os.environ.setdefault("GLOG_v", "3")

PAD_MODES_TRIED = ("same", "valid", "pad", "zeros", "reflect", "replicate", "circular")


def _shape(a) -> str:
    return "x".join(str(int(s)) for s in a.shape)


def _load_weight(net, w3: np.ndarray, ms) -> str:
    """Put a PyTorch-layout (O, I, k) weight into ``net``; returns the conversion that was needed."""
    target = tuple(net.weight.shape)
    if target == w3.shape:
        conversion = "none"
        w = w3
    elif target == (w3.shape[0], w3.shape[1], 1, w3.shape[2]):
        conversion = "expand_dims(w, 2)"
        w = np.expand_dims(w3, 2)
    else:
        raise ValueError(f"no known conversion from {w3.shape} to {target}")
    net.weight.set_data(ms.Tensor(np.ascontiguousarray(w), ms.float32))
    return conversion


def _defaults(ms, nn, p: dict, facts: dict) -> None:
    net = nn.Conv1d(p["in_channels"], p["out_channels"], p["kernel_size"])
    facts["ms.default_has_bias"] = bool(net.has_bias) and net.bias is not None
    facts["ms.default_pad_mode"] = str(net.pad_mode)
    sig = inspect.signature(nn.Conv1d.__init__).parameters
    for name in ("weight_init", "bias_init", "padding"):
        if name in sig:
            facts[f"ms.signature.{name}"] = repr(sig[name].default)
    facts["ms.signature.groups_name"] = "group" if "group" in sig else ("groups" if "groups" in sig else "")
    x = ms.Tensor(np.ones((1, p["in_channels"], p["length"]), np.float32))
    facts["ms.default_output_length"] = int(net(x).shape[-1])
    facts["ms.weight_shape"] = _shape(net.weight)
    facts["ms.weight_ndim"] = len(net.weight.shape)


def _same_splits(ms, nn, p: dict, outputs: dict, errors: dict) -> None:
    """One-hot kernel (tap 0) on x = 1..L: each output is x_pad[i], which reveals the left padding."""
    length = p["same_length"]
    x = ms.Tensor(np.arange(1, length + 1, dtype=np.float32).reshape(1, 1, length))
    for k, d in p["same_configs"]:
        def one() -> np.ndarray:
            net = nn.Conv1d(1, 1, k, pad_mode="same", dilation=d)
            w = np.zeros((1, 1, k), np.float32)
            w[0, 0, 0] = 1.0
            _load_weight(net, w, ms)
            return net(x).asnumpy().reshape(-1)
        y = _probe_io.attempt(errors, f"same_k{k}_d{d}", one)
        if y is not None:
            outputs[f"same_k{k}_d{d}"] = y


def _numeric(ms, nn, p: dict, inputs: dict, facts: dict, outputs: dict, errors: dict) -> None:
    """The case's torch weights loaded into MindSpore layers: valid, pad=p, same, and reflect via nn.Pad."""
    x, w, b = inputs["x"], inputs["w"], inputs["b"]
    c_out, c_in, k = w.shape
    pad = p["pad"]
    xt = ms.Tensor(x, ms.float32)

    def layer(**kw):
        net = nn.Conv1d(c_in, c_out, k, has_bias=True, **kw)
        facts["ms.load.conversion"] = _load_weight(net, w, ms)
        net.bias.set_data(ms.Tensor(b, ms.float32))
        return net

    for name, kw in (("valid", {"pad_mode": "valid"}), ("pad", {"pad_mode": "pad", "padding": pad}),
                     ("same", {"pad_mode": "same"})):
        y = _probe_io.attempt(errors, f"y_{name}", lambda kw=kw: layer(**kw)(xt).asnumpy())
        if y is not None:
            outputs[f"y_{name}"] = y

    def reflect() -> np.ndarray:
        # Pad the length axis only; the page's own example also pads the channel axis (see _published_examples).
        padder = nn.Pad(paddings=((0, 0), (0, 0), (pad, pad)), mode="REFLECT")
        return layer(pad_mode="valid")(padder(xt)).asnumpy()
    y = _probe_io.attempt(errors, "y_reflect", reflect)
    if y is not None:
        outputs["y_reflect"] = y


def _weight_loading(ms, nn, inputs: dict, facts: dict, errors: dict) -> None:
    """Can a PyTorch-shaped (O, I, k) weight go in unchanged, by each of the three usual routes?

    A route works only if the layer then computes what it computes with the weight converted explicitly
    (``expand_dims(w, 2)``); being accepted without an error is reported apart, as it is not enough.
    """
    w = inputs["w"]
    c_out, c_in, k = w.shape
    x = ms.Tensor(inputs["x"], ms.float32)
    ref = nn.Conv1d(c_in, c_out, k, pad_mode="valid")
    _load_weight(ref, w, ms)
    expected = ref(x).asnumpy()

    def route(build) -> tuple[bool, bool]:
        """(accepted without an error, then computes the same as the converted weight)."""
        try:
            net = build()
        except (ValueError, TypeError, RuntimeError):
            return False, False
        try:
            got = net(x).asnumpy()
        except (ValueError, TypeError, RuntimeError):
            return True, False
        return True, bool(got.shape == expected.shape and np.array_equal(got, expected))

    def set_data():
        net = nn.Conv1d(c_in, c_out, k, pad_mode="valid")
        net.weight.set_data(ms.Tensor(w, ms.float32))
        return net

    def load_param():
        net = nn.Conv1d(c_in, c_out, k, pad_mode="valid")
        ms.load_param_into_net(net, {"weight": ms.Parameter(ms.Tensor(w, ms.float32), name="weight")},
                               strict_load=True)
        return net

    def weight_init():
        return nn.Conv1d(c_in, c_out, k, pad_mode="valid", weight_init=ms.Tensor(w, ms.float32))

    for key, build in (("set_data_3d", set_data), ("load_param_3d", load_param), ("weight_init_3d", weight_init)):
        value = _probe_io.attempt(errors, f"load.{key}", lambda build=build: route(build))
        if value is not None:
            facts[f"ms.load.{key}_accepted"], facts[f"ms.load.{key}_ok"] = value


def _accepts(ms, nn, errors: dict, key: str, length: int = 8, **kw) -> bool | None:
    """Does Conv1d(2, 2, 3, **kw) construct and run? None when something unexpected broke."""
    def build() -> bool:
        try:
            net = nn.Conv1d(2, 2, 3, **kw)
            net(ms.Tensor(np.ones((1, 2, length), np.float32)))
        except (ValueError, TypeError, RuntimeError):
            return False
        return True
    return _probe_io.attempt(errors, key, build)


def _options(ms, nn, facts: dict, errors: dict) -> None:
    accepted = [m for m in PAD_MODES_TRIED if _accepts(ms, nn, errors, f"pad_mode.{m}", pad_mode=m)]
    facts["ms.pad_modes_accepted"] = ",".join(sorted(accepted))
    for key, kw in (("padding_tuple_accepted", {"pad_mode": "pad", "padding": (1, 2)}),
                    ("same_nonzero_padding_accepted", {"pad_mode": "same", "padding": 1}),
                    ("valid_nonzero_padding_accepted", {"pad_mode": "valid", "padding": 1})):
        value = _accepts(ms, nn, errors, key, **kw)
        if value is not None:
            facts[f"ms.{key}"] = value


def _published_examples(p: dict, facts: dict, errors: dict) -> None:
    """The page's MindSpore code examples 1-4, as published (their text comes from the parent), each in a fresh
    namespace with its stdout captured: what it printed; for example 3, the shape its nn.Pad made."""
    for i, text in enumerate(p.get("published_ms") or [], 1):
        ns: dict = {"__name__": "__published__"}
        buf = io.StringIO()

        def one(text=text, ns=ns, buf=buf):
            with contextlib.redirect_stdout(buf):
                exec(compile(text, f"<published: MindSpore's Conv1d page, code example {i}>", "exec"), ns)
            return True
        if _probe_io.attempt(errors, f"published.example{i}", one):
            facts[f"ms.published.example{i}.printed"] = buf.getvalue().strip()
            if "x_pad" in ns:
                facts[f"ms.published.example{i}.padded_shape"] = _shape(ns["x_pad"])


def _describe(init) -> str:
    """'HeUniform(negative_slope=2.236, mode=fan_in, ...)' for an initializer object, or the string given."""
    if init is None or isinstance(init, str):
        return repr(init)
    kwargs = getattr(init, "_kwargs", None) or {}
    args = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in kwargs.items())
    return f"{type(init).__name__}({args})"


def _init_samples(ms, nn, p: dict, facts: dict, outputs: dict) -> None:
    """Default-initialised parameters as raw samples; the parent runs the goodness-of-fit tests."""
    ms.set_seed(p["seed"])
    net = nn.Conv1d(p["init_in_channels"], p["init_out_channels"], p["init_kernel_size"], has_bias=True)
    outputs["init_weight"] = net.weight.asnumpy().reshape(-1)
    outputs["init_bias"] = net.bias.asnumpy().reshape(-1)
    facts["ms.init.weight_init"] = _describe(getattr(net, "weight_init", None))
    facts["ms.init.bias_init"] = _describe(getattr(net, "bias_init", None))


def task(p: dict, inputs: dict) -> dict:
    t0 = time.perf_counter()
    import mindspore as ms
    from mindspore import nn
    import_s = time.perf_counter() - t0
    facts = {"ms.probe.import_s": import_s, "ms.device_target": str(ms.get_context("device_target"))}
    outputs: dict = {}
    errors: dict = {}
    _defaults(ms, nn, p, facts)
    _same_splits(ms, nn, p, outputs, errors)
    _numeric(ms, nn, p, inputs, facts, outputs, errors)
    _weight_loading(ms, nn, inputs, facts, errors)
    _options(ms, nn, facts, errors)
    _published_examples(p, facts, errors)
    _init_samples(ms, nn, p, facts, outputs)
    return {"facts": facts, "outputs": outputs, "errors": errors, "versions": {"mindspore": ms.__version__}}


if __name__ == "__main__":
    _probe_io.run(task)
