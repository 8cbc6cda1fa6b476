"""The apply engine: which children a pass applies or prunes, and in what order it writes."""

import asyncio

from bereit.controllers.children import (
    AppliedChild,
    AppliedChildren,
    ChildApplier,
    RenderCache,
    RenderedChild,
    Rendering,
    plan,
)
from tests.unit.controllers.world import MemoryApi, World
from tests.unit.render.conftest import resolve

RENDERING = Rendering(("fp",), (RenderedChild("ConfigMap/a-code", "d1"), RenderedChild("Deployment/a", "d2")), "hash")


def live(ref, uid="u", fields="f", owner="owner", deleting=False):
    kind, name = ref.split("/")
    return {"apiVersion": "v1", "kind": kind, "name": name, "uid": uid, "fields": fields, "owner": owner, "deleting": deleting}


def test_children_never_applied_are_created():
    todo = plan(RENDERING, [], {}, "owner")
    assert [(c.ref, c.outcome) for c in todo.changes] == [("ConfigMap/a-code", "created"), ("Deployment/a", "created")]
    assert todo.prune == ()


def test_children_applied_and_untouched_are_skipped():
    records = {"ConfigMap/a-code": AppliedChild("d1", "u", "f"), "Deployment/a": AppliedChild("d2", "u", "f")}
    todo = plan(RENDERING, [live("ConfigMap/a-code"), live("Deployment/a")], records, "owner")
    assert todo.changes == ()


def test_a_new_rendering_updates_and_a_foreign_change_restores():
    records = {"ConfigMap/a-code": AppliedChild("old", "u", "f"), "Deployment/a": AppliedChild("d2", "u", "f")}
    todo = plan(RENDERING, [live("ConfigMap/a-code"), live("Deployment/a", fields="someone-else")], records, "owner")
    assert [(c.ref, c.outcome) for c in todo.changes] == [("ConfigMap/a-code", "updated"), ("Deployment/a", "restored")]


def test_a_child_deleted_meanwhile_or_recreated_is_applied_again():
    records = {"ConfigMap/a-code": AppliedChild("d1", "u", "f"), "Deployment/a": AppliedChild("d2", "u", "f")}
    todo = plan(RENDERING, [live("ConfigMap/a-code", deleting=True), live("Deployment/a", uid="other")], records, "owner")
    assert [c.outcome for c in todo.changes] == ["restored", "restored"]


def test_only_owned_children_no_longer_rendered_are_pruned():
    stale = [live("HorizontalPodAutoscaler/a"), live("Service/not-ours", owner="someone"), live("PodDisruptionBudget/a", deleting=True)]
    todo = plan(RENDERING, stale, {}, "owner")
    assert [c["kind"] for c in todo.prune] == ["HorizontalPodAutoscaler"]


def test_the_render_cache_renders_again_only_when_an_input_changes():
    cache = RenderCache()
    resolved = resolve()
    first = cache.rendering(resolved)
    assert cache.rendering(resolved) is first
    changed = resolve(code_digest="abc")
    assert cache.rendering(changed) is not first
    cache.forget("ml", "digits")
    assert cache.rendering(changed) is not first


def test_the_applier_writes_mounted_children_after_the_keys_then_the_rest_then_prunes():
    world = World()
    api = MemoryApi(world)
    applier = ChildApplier(api, RenderCache(), AppliedChildren())
    resolved = resolve()
    order = []

    async def keys():
        await asyncio.sleep(0)
        order.append("keys")

    async def converge():
        stale_hpa = live("HorizontalPodAutoscaler/old", owner=resolved.service.metadata.uid)
        return await applier.converge(resolved, [stale_hpa], resolved.service.metadata.uid, before_pods=asyncio.ensure_future(keys()))

    outcome, rendering = asyncio.run(converge())
    assert outcome.applied and rendering.spec_hash
    kinds = [ref.split("/")[0] for verb, ref in api.writes]
    assert kinds.index("ConfigMap") < kinds.index("Deployment")
    assert api.writes[-1] == ("delete", "HorizontalPodAutoscaler/old")
    assert "HorizontalPodAutoscaler/old (removed)" in outcome.updated
    assert set(outcome.created) == {ref for verb, ref in api.writes if verb == "apply"}
    assert order == ["keys"]


def test_a_refusal_is_reported_with_the_api_servers_message():
    world = World()
    api = MemoryApi(world)
    api.refuse.add("Deployment")
    applier = ChildApplier(api, RenderCache(), AppliedChildren())
    resolved = resolve()
    outcome, _ = asyncio.run(applier.converge(resolved, [], resolved.service.metadata.uid))
    assert not outcome.applied and "Deployment.spec: refused" in outcome.refused
