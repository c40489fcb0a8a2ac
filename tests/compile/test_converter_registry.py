"""The converter registry: one converter per module class; a second registration for the same
class is an error unless it says it replaces the first."""

from __future__ import annotations

import pytest
from torch import nn

from snnc.errors import SnncError
from snnc.frontends.torch import CONVERTERS, converter
from snnc.frontends.torch.registry import ConverterRegistrationError, find_converter


class Leaky(nn.Module):
    def forward(self, x):
        return x


@pytest.fixture(autouse=True)
def clean_registry():
    """Each test starts without a converter for Leaky and leaves none behind."""
    CONVERTERS.pop(Leaky, None)
    yield
    CONVERTERS.pop(Leaky, None)


def first(ctx, m, x):
    return x


def second(ctx, m, x):
    return x


def test_a_second_converter_for_a_class_is_refused_and_the_first_kept():
    converter(Leaky)(first)
    with pytest.raises(ConverterRegistrationError) as err:
        converter(Leaky)(second)
    message = str(err.value)
    assert isinstance(err.value, SnncError)
    assert "Leaky already has a converter" in message
    assert "first" in message and "second" in message and "replace=True" in message
    assert CONVERTERS[Leaky] is first
    assert find_converter(Leaky()) is first


def test_replace_true_replaces_it():
    converter(Leaky)(first)
    converter(Leaky, replace=True)(second)
    assert CONVERTERS[Leaky] is second


def test_registering_the_same_function_again_changes_nothing():
    converter(Leaky)(first)
    converter(Leaky)(first)
    assert CONVERTERS[Leaky] is first


def test_a_refused_registration_registers_none_of_its_classes():
    class Other(nn.Module):
        pass

    converter(Leaky)(first)
    with pytest.raises(ConverterRegistrationError):
        converter(Other, Leaky)(second)
    assert Other not in CONVERTERS and CONVERTERS[Leaky] is first


def test_a_builtin_converter_cannot_be_overwritten_by_accident():
    with pytest.raises(ConverterRegistrationError, match=r"torch\.nn\.Conv2d already has"):
        converter(nn.Conv2d)(second)
    assert CONVERTERS[nn.Conv2d] is not second


def test_a_subclass_gets_its_own_converter_without_replace():
    class MyConv(nn.Conv2d):
        pass

    converter(MyConv)(second)
    try:
        assert find_converter(MyConv(1, 1, 1)) is second
    finally:
        CONVERTERS.pop(MyConv)
