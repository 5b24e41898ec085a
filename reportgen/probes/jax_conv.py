"""JAX side of the ``conv1d_cross_framework`` case. Runs in JAX's own environment (numpy 2).

Imports only the standard library, numpy and jax (plus the sibling ``_probe_io``): never torch or reportgen.
``lax.conv_general_dilated`` with the 'SAME' and 'SAME_LOWER' paddings shows where each puts the odd padding
element; the case's torch weights (layout OIW, which is also PyTorch's) give outputs for the numeric comparison.
Default precision on purpose: the report should show what a user gets (on CPU that is full float32).
"""

from __future__ import annotations

import os
import time

import numpy as np

import _probe_io

# The checks are CPU-sized; a CUDA/TPU jaxlib would otherwise pick an accelerator and pre-allocate its memory.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

DIMENSIONS = ("NCH", "OIH", "NCH")


def _conv(lax, x, w, padding, dilation: int = 1):
    return lax.conv_general_dilated(x, w, window_strides=(1,), padding=padding, rhs_dilation=(dilation,),
                                    dimension_numbers=DIMENSIONS)


def _same_splits(lax, jnp, p: dict, outputs: dict, errors: dict) -> None:
    """One-hot kernel (tap 0) on x = 1..L: each output is x_pad[i], which reveals the left padding."""
    length = p["same_length"]
    x = jnp.arange(1, length + 1, dtype=jnp.float32).reshape(1, 1, length)
    for k, d in p["same_configs"]:
        w = np.zeros((1, 1, k), np.float32)
        w[0, 0, 0] = 1.0
        for mode, prefix in (("SAME", "same"), ("SAME_LOWER", "same_lower")):
            key = f"{prefix}_k{k}_d{d}"
            y = _probe_io.attempt(errors, key,
                                  lambda mode=mode: np.asarray(_conv(lax, x, jnp.asarray(w), mode, d)).reshape(-1))
            if y is not None:
                outputs[key] = y


def _numeric(lax, jnp, p: dict, inputs: dict, outputs: dict, errors: dict) -> None:
    x, w, b = (jnp.asarray(inputs[k], jnp.float32) for k in ("x", "w", "b"))
    pad = p["pad"]
    for name, padding in (("valid", "VALID"), ("pad", [(pad, pad)]), ("same", "SAME")):
        y = _probe_io.attempt(errors, f"y_{name}",
                              lambda padding=padding: np.asarray(_conv(lax, x, w, padding) + b[None, :, None]))
        if y is not None:
            outputs[f"y_{name}"] = y


def task(p: dict, inputs: dict) -> dict:
    t0 = time.perf_counter()
    import jax
    import jax.numpy as jnp
    from jax import lax
    import_s = time.perf_counter() - t0
    facts = {"jax.probe.import_s": import_s, "jax.backend": jax.default_backend()}
    outputs: dict = {}
    errors: dict = {}
    _same_splits(lax, jnp, p, outputs, errors)
    _numeric(lax, jnp, p, inputs, outputs, errors)
    versions = {"jax": jax.__version__}
    try:
        import jaxlib
        versions["jaxlib"] = jaxlib.__version__
    except (ImportError, AttributeError):
        pass
    return {"facts": facts, "outputs": outputs, "errors": errors, "versions": versions}


if __name__ == "__main__":
    _probe_io.run(task)
