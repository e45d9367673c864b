"""The README's examples are valid, and it documents every command and configuration key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from aggregator.cli import main
from aggregator.config.loading import load_config
from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.config.server import ServerConfig
from aggregator.config.sources import DefaultsConfig, SourceConfig
from aggregator.storage.outputs import check_search_query

README = (Path(__file__).parent.parent / "README.md").read_text()
YAML_BLOCKS = re.findall(r"```yaml\n(.*?)```", README, re.S)


def test_configuration_reference_example_is_valid(tmp_path: Path) -> None:
    [example] = [block for block in YAML_BLOCKS if block.startswith("database:")]
    path = tmp_path / "aggregator.yaml"
    path.write_text(example)
    config = load_config(path)
    assert config.output("syria").search == "tanf OR deraa"


def test_rules_example_is_valid_on_an_output(tmp_path: Path) -> None:
    [rules] = [block for block in YAML_BLOCKS if block.startswith("include:")]
    output = {"name": "x", **yaml.safe_load(rules)}
    AppConfig.model_validate({"outputs": [output]})


def test_every_search_example_is_a_valid_query() -> None:
    section = README.split("### Search query syntax")[1].split("###")[0]
    queries = re.findall(r"^\| `([^`]+)`", section, re.M)
    assert len(queries) >= 8
    for query in queries:
        check_search_query(query)


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"`aggregator {command}" in README


@pytest.mark.parametrize(
    ("model", "heading"),
    [
        (ServerConfig, "### `server`"),
        (DefaultsConfig, "### `defaults`"),
        (SourceConfig, "### `sources[]`"),
        (OutputConfig, "### `outputs[]`"),
    ],
)
def test_every_configuration_key_is_in_its_table(model: type[BaseModel], heading: str) -> None:
    table = README.split(heading)[1].split("\n### ")[0]
    documented = set(re.findall(r"`([a-z_]+)`", table))
    assert set(model.model_fields) <= documented
