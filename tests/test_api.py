"""The public API (docs/DESIGN.md, "Public API"): every function exists in xent_fast and in
xent_fast.reference with the same signature; options are keyword-only."""

import inspect

import pytest

from _helpers import ALL_NAMES, FUNCS, USING_REFERENCE, impl, ref


@pytest.mark.parametrize("name", ALL_NAMES)
def test_signature_matches_the_reference(name):
    got = inspect.signature(getattr(impl, name))
    want = inspect.signature(getattr(ref, name))
    assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in want.parameters.values()], (str(got), str(want))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_options_are_keyword_only(name):
    fn = FUNCS[name]
    params = inspect.signature(getattr(impl, name)).parameters
    positional = [p.name for p in params.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    expected = [fn.first] + (["axis"] if fn.family in ("lsm", "sm", "lse") else
                             ["targets"])
    assert positional == expected, positional
    for opt in fn.options:
        assert opt in params, "%s has no option %s" % (name, opt)
        assert opt == "axis" and fn.family in ("lsm", "sm", "lse") or \
            params[opt].kind == params[opt].KEYWORD_ONLY, opt


@pytest.mark.skipif(USING_REFERENCE, reason="the package's namespace")
def test_public_names():
    import xent_fast

    for name in ALL_NAMES:
        assert callable(getattr(xent_fast, name))
        assert name in getattr(xent_fast, "__all__", [name])
    assert isinstance(xent_fast.__version__, str)
