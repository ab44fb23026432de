"""The flat public API a learner types (``from lowlight_matting import ...``, README and notebooks): each name
resolves to the object its documented module defines; ``import lowlight_matting`` stays light (no torch);
every advertised name resolves; an unknown one is a clear AttributeError.

The expected modules are written out here, by hand, rather than read from the package's own export table, so
that a name that moves, disappears or resolves to the wrong object fails this test. A name may move *within*
its documented module (``lowlight_matting.simulate`` -> ``lowlight_matting.simulate.numpy_sim``): the check is
that it is defined at or below that module and re-exported by it.
"""

import importlib
import subprocess
import sys

import pytest

import lowlight_matting

# name -> the module the README / notebooks / layout send a learner to
DOCUMENTED = {
    "srgb_to_linear": "lowlight_matting.color",
    "linear_to_srgb": "lowlight_matting.color",
    "mean_luminance": "lowlight_matting.color",
    "is_dark": "lowlight_matting.color",
    "DARK_THRESHOLD": "lowlight_matting.color",
    "LowLightSimulator": "lowlight_matting.simulate",
    "simulate_batch": "lowlight_matting.simulate",
    "simulate_low_light": "lowlight_matting.simulate",
    "build_train_transform": "lowlight_matting.augment",
    "SyntheticMattingDataset": "lowlight_matting.data",
    "FolderMattingDataset": "lowlight_matting.data",
    "collate_matting": "lowlight_matting.data",
    "load_samples": "lowlight_matting.data",
    "build_model": "lowlight_matting.models",
    "ZeroDCEPP": "lowlight_matting.models",
    "MattingLoss": "lowlight_matting.losses",
    "dynamic_edge_weight": "lowlight_matting.losses",
    "compute_metrics": "lowlight_matting.metrics",
    "gradient_error": "lowlight_matting.metrics",
    "load_matter": "lowlight_matting.deploy",
    "low_light_explorer": "lowlight_matting.widgets",
    "image_grid": "lowlight_matting.viz",
    "read_image": "lowlight_matting.io",
    "seed_everything": "lowlight_matting.seeding",
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_name_resolves_to_the_object_of_its_module(name):
    module_name = DOCUMENTED[name]
    assert name in lowlight_matting.__all__, f"{name} is not advertised in lowlight_matting.__all__"
    obj = getattr(lowlight_matting, name)
    module = importlib.import_module(module_name)
    assert getattr(module, name) is obj, f"lowlight_matting.{name} is not {module_name}.{name}"
    defined_in = getattr(obj, "__module__", None)
    if callable(obj):  # classes and functions say where they are defined; constants cannot
        assert defined_in == module_name or defined_in.startswith(module_name + "."), (
            f"{name} is defined in {defined_in}, not under {module_name}"
        )
    namespace: dict = {}
    exec(f"from lowlight_matting import {name}", namespace)
    assert namespace[name] is obj


def test_dark_threshold_is_the_article_rule_in_linear_light():
    assert lowlight_matting.DARK_THRESHOLD == pytest.approx(((0.3 + 0.055) / 1.055) ** 2.4, rel=1e-12)


def test_importing_the_package_does_not_import_torch():
    code = (
        "import sys, lowlight_matting; "
        "heavy = sorted(m for m in ('torch', 'timm', 'kornia', 'cv2') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import lowlight_matting imported {out.stdout.strip()}"


def test_every_advertised_name_resolves():
    missing = []
    for name in lowlight_matting.__all__:
        try:
            getattr(lowlight_matting, name)
        except (AttributeError, ImportError) as e:
            missing.append(f"{name}: {type(e).__name__}: {e}")
    assert not missing, "names in lowlight_matting.__all__ that do not resolve:\n" + "\n".join(missing)
    assert set(lowlight_matting.__all__) <= set(dir(lowlight_matting))


def test_unknown_name_is_a_clear_attribute_error():
    with pytest.raises(AttributeError, match="'lowlight_matting' has no attribute 'no_such_thing'"):
        lowlight_matting.no_such_thing  # noqa: B018
    with pytest.raises(ImportError, match="no_such_thing"):
        exec("from lowlight_matting import no_such_thing", {})
