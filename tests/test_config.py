"""Configuration: defaults, TOML file, environment, and one clear line when something is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from instore.config import DEFAULTS, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "instore.toml"
    path.write_text(text)
    return path


def test_defaults_work_with_no_file() -> None:
    config = load_config(environ={})
    assert config.source in {"defaults", "/etc/instore/instore.toml"}
    assert str(config.database_path) == "var/instore.db"
    assert config["portal"]["session_hours"] == 8


def test_file_then_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nname = "Calle Mayor"\n[portal]\nsession_hours = 4\n')
    config = load_config(path, environ={"INSTORE_PORTAL_SESSION_HOURS": "2"})
    assert config["store"]["name"] == "Calle Mayor"
    assert config["portal"]["session_hours"] == 2
    assert config.overrides == ("INSTORE_PORTAL_SESSION_HOURS",)


def test_config_env_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nname = "From env"\n')
    assert load_config(environ={"INSTORE_CONFIG": str(path)})["store"]["name"] == "From env"


def test_list_from_environment() -> None:
    config = load_config(environ={"INSTORE_PORTAL_HOSTNAMES": "portal.lan, 10.0.0.1"})
    assert config["portal"]["hostnames"] == ["portal.lan", "10.0.0.1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[portal]\nsession_hours = 'eight'\n", "portal.session_hours: expected an integer"),
        ("[portal]\nsesion_hours = 8\n", "portal.sesion_hours: unknown key"),
        ("[portl]\nx = 1\n", "[portl]: unknown section"),
        ("[portal\n", "not valid TOML"),
        ("[portal]\npublic_url = 'ftp://x'\n", "portal.public_url: must start with http"),
        ("[portal]\nbind = 'nowhere'\n", "portal.bind: expected HOST:PORT"),
        ("[portal]\nsession_hours = -3\n", "must not be negative"),
        ("[portal]\nhostnames = [1, 2]\n", "expected a list of strings"),
        ("store = 3\n", "expected a [store] table"),
        ("[store]\ntimezone = 'Mars/Olympus'\n", "store.timezone: unknown time zone"),
        ("[store]\ncurrency = 'euro'\n", "store.currency: expected a three-letter ISO 4217 code"),
    ],
)
def test_bad_file_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(path) in str(caught.value)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"INSTORE_PORTAL_SESSION_HOURS": "many"}, "INSTORE_PORTAL_SESSION_HOURS"),
        ({"INSTORE_NOPE": "1"}, "unknown setting"),
    ],
)
def test_bad_environment(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ=environ)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml", environ={})


def test_every_default_has_a_supported_type() -> None:
    for section in DEFAULTS.values():
        for value in section.values():
            assert isinstance(value, (str, int, bool, list))


def test_example_file_documents_every_key_and_parses(tmp_path: Path) -> None:
    """deploy/instore.toml.example lists every setting with its default, commented out."""
    example = Path(__file__).parents[1] / "deploy" / "instore.toml.example"
    text = example.read_text()
    for section, keys in DEFAULTS.items():
        assert f"[{section}]" in text
        for key in keys:
            assert f"# {key} = " in text, f"{section}.{key} is missing from {example.name}"
    uncommented = "\n".join(
        line.lstrip("# ").split("#")[0] if " = " in line else line for line in text.splitlines()
    )
    loaded = load_config(write(tmp_path, uncommented), environ={})
    assert loaded.as_dict() == {name: dict(values) for name, values in DEFAULTS.items()}
