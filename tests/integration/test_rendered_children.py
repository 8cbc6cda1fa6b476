"""Rendered children are accepted by a real API server (server-side dry-run apply)."""

import pytest
import yaml

from bereit.render import render_children, render_keys_secret
from tests.unit.render.test_children import VARIANTS


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_api_server_accepts_every_rendered_child(kube_cluster, namespace, variant):
    resolved = VARIANTS[variant]()
    children = [*render_children(resolved), render_keys_secret(resolved, "p" * 32, "s" * 32)]
    for child in children:
        child["metadata"]["namespace"] = namespace
    manifest = yaml.safe_dump_all(children)
    output = kube_cluster.kubectl(
        "apply", "--server-side", "--field-manager=bereit-operator", "--dry-run=server", "-f", "-", input=manifest
    )
    assert output.count("serverside-applied (server dry run)") == len(children), output
