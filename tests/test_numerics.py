import math
import warnings

import pytest
import torch

from reportgen.measure import numerics as nm


def test_ulp_distance_known_values():
    one = torch.tensor([1.0])
    up3 = one
    for _ in range(3):
        up3 = torch.nextafter(up3, torch.tensor([2.0]))
    assert nm.ulp_distance(one, up3).item() == 3
    # across zero: -tiny .. +tiny is 2 steps, and -0 == +0
    tiny = torch.tensor([1e-45])
    assert nm.ulp_distance(-tiny, tiny).item() == 2
    assert nm.ulp_distance(torch.tensor([-0.0]), torch.tensor([0.0])).item() == 0
    h = torch.tensor([1.0], dtype=torch.float16)
    assert nm.ulp_distance(h, torch.nextafter(h, torch.tensor([2.0], dtype=torch.float16))).item() == 1


def test_gamma_and_vacuous_bound():
    assert nm.gamma(8, torch.float32) == pytest.approx(8 * 2**-24 / (1 - 8 * 2**-24))
    assert math.isinf(nm.gamma(300, torch.bfloat16))  # 300 * 2^-8 >= 1


def test_matmul_bound_is_gamma_times_abs_product():
    a = torch.tensor([[1.0, -2.0]])
    b = torch.tensor([[3.0], [4.0]])
    bias = torch.tensor([-1.0])
    got = nm.matmul_bound(a, b, torch.float32, bias=bias)
    assert got.item() == pytest.approx(nm.gamma(3, torch.float32) * (3 + 8 + 1))


def test_bitwise_fraction_and_verdicts_flip():
    a = torch.arange(1, 9, dtype=torch.float32)
    b = a.clone()
    b[:2] = torch.nextafter(b[:2], torch.tensor(100.0))
    tight = nm.compare(a, b, torch.zeros(8, dtype=torch.float64), name="x", actual_label="a", expected_label="b")
    assert tight.bitwise_equal_fraction == pytest.approx(6 / 8)
    assert tight.max_ulp == 1
    assert tight.verdict == nm.OUT_OF_BOUND  # any difference where none is allowed
    loose = nm.compare(a, b, torch.full((8,), 1e-5, dtype=torch.float64), name="x", actual_label="a",
                       expected_label="b")
    assert loose.verdict == nm.WITHIN
    assert loose.max_normalised == pytest.approx(2**-22 / 1e-5)  # ulp(2) = 2^-22
    same = nm.compare(a, a.clone(), 0.0, name="x", actual_label="a", expected_label="b")
    assert same.verdict == nm.IDENTICAL and same.bitwise_equal_fraction == 1.0


def test_against_float64_reference_counts_correct_rounding():
    ref = torch.tensor([1 / 3, 2 / 3, 1.0], dtype=torch.float64)
    actual = ref.float()
    actual[1] = torch.nextafter(actual[1], torch.tensor(0.0))
    c = nm.compare(actual, ref, 1e-6, name="x", actual_label="a", expected_label="ref")
    assert c.bitwise_equal_fraction == pytest.approx(2 / 3)
    assert c.max_ulp == 1


def test_near_zero_elements_are_masked_and_counted():
    ref = torch.tensor([1.0, 1e-9, 2.0], dtype=torch.float64)
    actual = torch.tensor([1.0, 2e-9, 2.0])
    c = nm.compare(actual, ref, torch.tensor([1e-7, 1e-7, 1e-7], dtype=torch.float64), name="x",
                   actual_label="a", expected_label="ref")
    assert c.masked == 1  # |1e-9| is inside its own bound: its 100% relative error is not reported
    assert c.max_rel == pytest.approx(0.0)


def test_nonfinite_mismatch_is_out_of_bound():
    a = torch.tensor([1.0, float("nan")])
    b = torch.tensor([1.0, 2.0])
    c = nm.compare(a, b, 1.0, name="x", actual_label="a", expected_label="b")
    assert c.nonfinite_mismatch == 1 and c.verdict == nm.OUT_OF_BOUND


def test_real_fp32_dot_products_stay_within_bound():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 128, generator=g)
    w = torch.randn(128, 16, generator=g)
    ref = x.double() @ w.double()
    c = nm.compare(x @ w, ref, nm.matmul_bound(x, w, torch.float32), name="mm", actual_label="mm",
                   expected_label="fp64")
    assert c.verdict in (nm.WITHIN, nm.IDENTICAL)
    assert 0 < c.max_normalised <= 1


def test_histogram_counts_zeros_apart():
    h = nm.log10_abs_histogram(torch.tensor([0.0, 0.0, 1e-7, 1e-6]), bins=4)
    assert h["zeros"] == 2 and sum(h["counts"]) == 2 and h["total"] == 4


def test_spearman_handles_ties_and_constant_series():
    from reportgen.cases.linear_vs_conv1d import _spearman

    assert _spearman([1, 2, 4, 8], [0.0, 0.0, 0.0, 0.0]) is None  # all equal: no trend, not a perfect one
    assert _spearman([1, 2, 4, 8], [1e-7, 2e-7, 3e-7, 5e-7]) == pytest.approx(1.0)
    assert _spearman([1, 2, 4, 8], [4.0, 3.0, 3.0, 1.0]) < -0.9


def test_conv1d_bound_is_the_matmul_bound_for_k1_and_holds_for_padded_convs():
    import torch.nn.functional as F

    from reportgen.measure.numerics import conv1d_bound, matmul_bound
    gen = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(2, 8, 50, generator=gen), torch.randn(4, 8, 1, generator=gen), torch.randn(4, generator=gen)
    # k = 1: the same dot products as x^T W^T + b, so the same bound (n included), element for element
    as_matmul = matmul_bound(x.transpose(1, 2), w[:, :, 0].t(), torch.float32, bias=b).transpose(1, 2)
    assert torch.allclose(conv1d_bound(x, w, b, torch.float32), as_matmul, rtol=1e-12, atol=0)
    w4 = torch.randn(4, 8, 4, generator=gen)
    for kwargs in ({}, {"padding": 3}, {"padding": "same"}, {"dilation": 2}):
        bound = conv1d_bound(x, w4, b, torch.float32, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            err = (F.conv1d(x, w4, b, **kwargs).double() - F.conv1d(x.double(), w4.double(), b.double(), **kwargs)).abs()
        assert bound.shape == err.shape and bool((err <= bound).all()) and float((err / bound).max()) > 1e-3
