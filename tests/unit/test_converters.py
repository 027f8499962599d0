"""Every named converter, with good and bad input."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mappings.converters import CONVERTERS, ConversionError, Ctx, get_converter

VALUE_MAP = {"Goods": "goods", "Services": "service"}


def books(name: str, value, **ctx):
    return get_converter(name).to_books(value, Ctx(name="F", **ctx))


def crm(name: str, value, **ctx):
    return get_converter(name).to_crm(value, Ctx(name="F", **ctx))


@pytest.mark.parametrize(("value", "expected"), [
    ("  Zylker  ", "Zylker"),
    ("Zylker 🚀 Ltd", "Zylker 🚀 Ltd"),
    ("شركة الأمل", "شركة الأمل"),
    ("(Acme), \\ Inc: *?", "(Acme), \\ Inc: *?"),
    (None, None), ("", None), ("   ", None), (float("nan"), None),
    (42, "42"),
    ("e\u0301", "\u00e9"),  # NFC: combining accent composed
])
def test_text_accepts_and_normalises(value, expected):
    assert books("text", value) == expected


def test_text_too_long_names_the_length_and_limit():
    with pytest.raises(ConversionError) as err:
        books("text", "x" * 201, max_length=200)
    assert err.value.code == "TOO_LONG"
    assert "201 characters" in err.value.message and "200" in err.value.message
    assert "shorten" in err.value.hint


def test_text_rejects_control_characters():
    with pytest.raises(ConversionError, match="control characters"):
        books("text", "bad\x00name")


@pytest.mark.parametrize("value", ["ann@example.com", "a.b+c@sub.example.org", "jo@müller.de"])
def test_email_valid(value):
    assert books("email", f" {value} ") == value


@pytest.mark.parametrize("value", ["ann@", "@x.com", "a b@x.com", "ann@x", "a..b@x.com",
                                   "ann@@x.com", "ann@-x.com"])
def test_email_invalid(value):
    with pytest.raises(ConversionError) as err:
        books("email", value)
    assert err.value.code == "INVALID_EMAIL" and repr(value.strip()) in err.value.message


@pytest.mark.parametrize("value", ["+1 555 0100", "(555) 010-0100", "+44 20 7946 0958 ext 12",
                                   "555.0100"])
def test_phone_valid(value):
    assert books("phone", value) == value


@pytest.mark.parametrize("value", ["call me", "12", "+1 555 CALL-NOW"])
def test_phone_invalid(value):
    with pytest.raises(ConversionError, match="not a phone number"):
        books("phone", value)


@pytest.mark.parametrize("value", ["https://www.zylker.com", "zylker.com", "http://x.io/a?b=1"])
def test_url_valid_kept_as_entered(value):
    assert books("url", value) == value


@pytest.mark.parametrize("value", ["not a url", "http://", "zylker"])
def test_url_invalid(value):
    with pytest.raises(ConversionError, match="not a web address"):
        books("url", value)


@pytest.mark.parametrize(("value", "expected"), [
    ("10", Decimal("10.00")), (10, Decimal("10.00")), (0.1, Decimal("0.10")),
    ("1,234.50", Decimal("1234.50")), (Decimal("9.9"), Decimal("9.90")),
    ("10.500", Decimal("10.50")), (None, None), ("", None),
])
def test_decimal_money(value, expected):
    out = books("decimal", value)
    assert out == expected and (out is None or isinstance(out, Decimal))
    if out is not None:
        assert out.as_tuple().exponent == -2


@pytest.mark.parametrize(("value", "code"), [
    ("10.505", "TOO_MANY_DECIMALS"), ("-1", "NEGATIVE_AMOUNT"), ("abc", "INVALID_AMOUNT"),
    ("NaN", "INVALID_AMOUNT"), ("Infinity", "INVALID_AMOUNT"), ("1e13", "ABSURD_AMOUNT"),
    (True, "INVALID_AMOUNT"),
])
def test_decimal_rejects(value, code):
    with pytest.raises(ConversionError) as err:
        books("decimal", value)
    assert err.value.code == code


def test_decimal_negative_when_allowed():
    assert books("decimal", "-5.25", allow_negative=True) == Decimal("-5.25")


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), ("yes", True), ("1", True), (False, False), ("No", False), (None, None)])
def test_boolean(value, expected):
    assert books("boolean", value) is expected


def test_boolean_rejects_other_words():
    with pytest.raises(ConversionError, match="not yes/no"):
        books("boolean", "maybe")


def test_picklist_maps_both_ways_and_names_unmapped_values():
    assert books("picklist", "Goods", value_map=VALUE_MAP) == "goods"
    assert crm("picklist", "service", value_map=VALUE_MAP) == "Services"
    with pytest.raises(ConversionError) as err:
        books("picklist", "Digital", value_map=VALUE_MAP)
    assert err.value.code == "UNMAPPED_VALUE" and "'Digital'" in err.value.message
    assert "value map" in err.value.hint
    with pytest.raises(ConversionError, match="'digital_service'"):
        crm("picklist", "digital_service", value_map=VALUE_MAP)


def test_lookup_name():
    assert books("lookup_name", {"id": "1", "name": "Patricia Boyle"}) == "Patricia Boyle"
    assert books("lookup_name", None) is None
    with pytest.raises(ConversionError) as err:
        books("lookup_name", {"id": "77", "name": None})  # e.g. the owner was deleted
    assert err.value.code == "MISSING_LOOKUP" and "77" in err.value.message


def test_active_status_both_ways():
    assert books("active_status", True) == "active"
    assert books("active_status", False) == "inactive"
    assert crm("active_status", "inactive") is False


def test_full_name_joins_parts():
    assert books("full_name", ["Ann", "Lee"]) == "Ann Lee"
    assert books("full_name", [None, "Lee"]) == "Lee"
    assert books("full_name", [None, None]) is None


def test_registry_lookup_error_names_known_converters():
    with pytest.raises(KeyError, match="unknown converter 'nope'.*decimal"):
        get_converter("nope")
    assert {"text", "email", "phone", "decimal", "url", "boolean", "picklist",
            "lookup_name"} <= set(CONVERTERS)
