"""The official Python `kubernetes` client drives berth unchanged: typed
create, list with label and field selectors, watch, patch and delete."""

import threading

from kubernetes import watch
from kubernetes.client.rest import ApiException


def _configmap(client, name, labels):
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        data={"key": name},
    )


def test_create_list_with_selectors_patch_and_delete(api):
    client, api_client = api
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py-crud")))
    for name, tier in [("a", "web"), ("b", "web"), ("c", "db")]:
        created = core.create_namespaced_config_map("py-crud", _configmap(client, name, {"tier": tier}))
        assert created.metadata.uid
        assert created.metadata.resource_version

    web = core.list_namespaced_config_map("py-crud", label_selector="tier=web")
    assert sorted(cm.metadata.name for cm in web.items) == ["a", "b"]
    not_web = core.list_namespaced_config_map("py-crud", label_selector="tier notin (web)")
    assert [cm.metadata.name for cm in not_web.items] == ["c"]
    by_name = core.list_namespaced_config_map("py-crud", field_selector="metadata.name=b")
    assert [cm.metadata.name for cm in by_name.items] == ["b"]

    page = core.list_namespaced_config_map("py-crud", limit=2)
    assert len(page.items) == 2 and page.metadata._continue
    rest = core.list_namespaced_config_map("py-crud", limit=2, _continue=page.metadata._continue)
    assert [cm.metadata.name for cm in rest.items] == ["c"]

    patched = core.patch_namespaced_config_map("a", "py-crud", {"data": {"extra": "1"}})
    assert patched.data == {"key": "a", "extra": "1"}

    core.delete_namespaced_config_map("a", "py-crud")
    try:
        core.read_namespaced_config_map("a", "py-crud")
        raise AssertionError("configmap a should be gone")
    except ApiException as e:
        assert e.status == 404


def test_stale_update_conflicts(api):
    client, api_client = api
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py-conflict")))
    cm = core.create_namespaced_config_map("py-conflict", _configmap(client, "x", {}))
    cm.data = {"v": "1"}
    core.replace_namespaced_config_map("x", "py-conflict", cm)
    cm.data = {"v": "2"}
    try:
        core.replace_namespaced_config_map("x", "py-conflict", cm)
        raise AssertionError("a stale resourceVersion must conflict")
    except ApiException as e:
        assert e.status == 409
        assert "the object has been modified" in e.body


def test_watch_sees_changes_in_order(api):
    client, api_client = api
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py-watch")))
    start = core.list_namespaced_config_map("py-watch").metadata.resource_version
    events = []

    def collect():
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_config_map, "py-watch", resource_version=start, timeout_seconds=10):
            events.append((event["type"], event["object"].metadata.name))
            if len(events) == 3:
                w.stop()

    t = threading.Thread(target=collect)
    t.start()
    core.create_namespaced_config_map("py-watch", _configmap(client, "w", {}))
    core.patch_namespaced_config_map("w", "py-watch", {"data": {"n": "2"}})
    core.delete_namespaced_config_map("w", "py-watch")
    t.join(timeout=15)
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]

    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.25")]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment("py-watch", deployment)
    assert created.spec.strategy.type == "RollingUpdate"
    scaled = apps.patch_namespaced_deployment_scale("web", "py-watch", {"spec": {"replicas": 5}})
    assert scaled.spec.replicas == 5
    assert apps.read_namespaced_deployment("web", "py-watch").spec.replicas == 5


def test_status_subresource_is_separate_from_spec(api):
    client, api_client = api
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py-status")))
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.25")]),
            ),
        ),
        status=client.V1DeploymentStatus(replicas=99),
    )
    created = apps.create_namespaced_deployment("py-status", deployment)
    assert created.status is None or not created.status.replicas, "status is reset on create"
    updated = apps.patch_namespaced_deployment_status("web", "py-status", {"status": {"replicas": 3, "readyReplicas": 2}})
    assert updated.status.replicas == 3
    assert updated.metadata.generation == 1, "status writes do not bump generation"
    spec_write = apps.patch_namespaced_deployment("web", "py-status", {"spec": {"replicas": 4}, "status": {"replicas": 0}})
    assert spec_write.spec.replicas == 4
    assert spec_write.status.replicas == 3, "the main resource ignores status"
    assert spec_write.metadata.generation == 2
