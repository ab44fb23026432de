"""The flat public API: every advertised name resolves to the object of the module that defines it."""

import importlib

import lowlight_matting


def test_every_public_name_resolves_to_its_module_object():
    for name in lowlight_matting.__all__:
        module = importlib.import_module(f"lowlight_matting.{lowlight_matting._WHERE[name]}")
        assert getattr(lowlight_matting, name) is getattr(module, name), name


def test_unknown_name_is_a_clear_attribute_error():
    try:
        lowlight_matting.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
