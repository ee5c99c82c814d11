import copy

import pytest
import yaml

from scripts.infrastructure.study_config import ConfigError, check, runs


def validated():
    from snakemake.utils import validate

    config = yaml.safe_load(open("config.yaml"))
    validate(config, "schemas/config.schema.yaml")
    return config


def test_the_embedded_config_passes_and_expands_to_the_grid():
    config = validated()
    check(config)
    assert len(runs(config)) == len(config["streams"]) * 2


@pytest.mark.parametrize(
    "edit, key",
    [
        (
            lambda c: c["streams"].update(bad={"kind": "oracle", "task": "refine", "oracle": "gpt"}),
            "streams.bad.oracle",
        ),
        (lambda c: c.update(primary_reward="skywork"), "primary_reward"),
        (lambda c: c["training"].update(batch_size=[20]), "training.batch_size"),
        (lambda c: c["report"].update(table_lr=0.1), "report.table_lr"),
        (
            lambda c: c["report"].update(published={"source": "x", "student": "qwen", "streams": {}}),
            "report.published.student",
        ),
        (
            lambda c: c["report"].update(published={"source": "x", "student": "tiny", "streams": {"numina": {}}}),
            "report.published.streams",
        ),
    ],
)
def test_inconsistent_configs_name_the_key(edit, key):
    config = copy.deepcopy(validated())
    edit(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check(config)


def test_every_schema_key_has_a_description_and_a_default():
    schema = yaml.safe_load(open("schemas/config.schema.yaml"))
    missing = []

    def walk(node, path):
        for name, sub in (node.get("properties") or {}).items():
            if "description" not in sub:
                missing.append(f"{path}{name}: description")
            if "default" not in sub and name not in (node.get("required") or []):
                missing.append(f"{path}{name}: default")
            walk(sub, f"{path}{name}.")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}*.")

    walk(schema, "")
    for name, d in schema["$defs"].items():
        walk(d, f"$defs.{name}.")
    assert not missing, missing
