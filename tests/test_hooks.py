"""Plug-in hooks: documented, built-ins registered through them, third parties can join."""

from __future__ import annotations

import inspect

from instore import hookimpl, hookspecs
from instore.config import Config
from instore.plugins import DEFAULT_PLUGINS, pm


def spec_functions() -> list[str]:
    return [
        name
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, "instore_spec")
    ]


def test_every_hook_is_documented() -> None:
    names = spec_functions()
    assert names, "hookspecs defines hooks"
    for name in names:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and len(doc) > 20, f"hook {name} needs a docstring"


def test_builtins_are_registered() -> None:
    assert set(DEFAULT_PLUGINS) <= {name for name, _ in pm.list_name_plugin()}


def test_builtin_backends(config: Config) -> None:
    gateway = pm.hook.gateway_backend(name="memory", config=config)
    assert gateway.authorized() == set()
    assert pm.hook.gateway_backend(name="no-such", config=config) is None
    assert pm.hook.client_lookup(name="demo", config=config) is not None


def test_third_party_gateway_plugin(config: Config) -> None:
    class Recorder:
        def authorized(self) -> set[tuple[str, str]]:
            return {("02:00:00:00:00:01", "10.0.0.2")}

        def apply(self, add: list[object], remove: list[tuple[str, str]]) -> None:
            pass

    class Plugin:
        @hookimpl
        def gateway_backend(self, name: str, config: Config) -> Recorder | None:
            return Recorder() if name == "recorder" else None

    plugin = Plugin()
    pm.register(plugin, name="test-recorder")
    try:
        backend = pm.hook.gateway_backend(name="recorder", config=config)
        assert isinstance(backend, Recorder)
    finally:
        pm.unregister(name="test-recorder")
    assert pm.hook.gateway_backend(name="recorder", config=config) is None
