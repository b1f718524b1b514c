"""Custom resources through the official Python client: a CustomResourceDefinition
created with ApiextensionsV1Api, objects through CustomObjectsApi (create, list
with a label selector, get, merge patch, status, delete), schema errors as 422
with upstream's text, and metadata-only lists through the dynamic client."""

import json
import time

from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

GROUP = "py.example.com"


def _definition(client):
    schema = client.V1JSONSchemaProps(
        type="object",
        properties={
            "spec": client.V1JSONSchemaProps(
                type="object",
                properties={
                    "size": client.V1JSONSchemaProps(type="integer", minimum=1, default=2),
                    "color": client.V1JSONSchemaProps(type="string", enum=["red", "blue"]),
                },
            ),
            "status": client.V1JSONSchemaProps(
                type="object",
                properties={"ready": client.V1JSONSchemaProps(type="boolean")},
            ),
        },
    )
    return client.V1CustomResourceDefinition(
        metadata=client.V1ObjectMeta(name=f"boxes.{GROUP}"),
        spec=client.V1CustomResourceDefinitionSpec(
            group=GROUP,
            scope="Namespaced",
            names=client.V1CustomResourceDefinitionNames(plural="boxes", singular="box", kind="Box"),
            versions=[
                client.V1CustomResourceDefinitionVersion(
                    name="v1",
                    served=True,
                    storage=True,
                    schema=client.V1CustomResourceValidation(open_apiv3_schema=schema),
                    subresources=client.V1CustomResourceSubresources(status={}),
                )
            ],
        ),
    )


def _wait_established(extensions, name):
    deadline = time.time() + 30
    while time.time() < deadline:
        crd = extensions.read_custom_resource_definition(name)
        conditions = (crd.status and crd.status.conditions) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return crd
        time.sleep(0.2)
    raise AssertionError(f"{name} never became Established")


def test_custom_objects_through_the_python_client(api):
    client, api_client = api
    extensions = client.ApiextensionsV1Api(api_client)
    extensions.create_custom_resource_definition(_definition(client))
    crd = _wait_established(extensions, f"boxes.{GROUP}")
    assert crd.status.accepted_names.kind == "Box"

    custom = client.CustomObjectsApi(api_client)
    box = {"apiVersion": f"{GROUP}/v1", "kind": "Box", "metadata": {"name": "one", "labels": {"app": "py"}},
           "spec": {"color": "red"}}
    created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "boxes", box)
    assert created["spec"] == {"color": "red", "size": 2}
    assert created["metadata"]["generation"] == 1

    listed = custom.list_namespaced_custom_object(GROUP, "v1", "default", "boxes", label_selector="app=py")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["one"]

    patched = custom.patch_namespaced_custom_object(GROUP, "v1", "default", "boxes", "one", {"spec": {"size": 5}})
    assert patched["spec"]["size"] == 5
    assert patched["metadata"]["generation"] == 2

    status = custom.patch_namespaced_custom_object_status(
        GROUP, "v1", "default", "boxes", "one", {"status": {"ready": True}}
    )
    assert status["status"] == {"ready": True}

    try:
        custom.create_namespaced_custom_object(
            GROUP, "v1", "default", "boxes",
            {"apiVersion": f"{GROUP}/v1", "kind": "Box", "metadata": {"name": "bad"}, "spec": {"color": "green"}},
        )
        raise AssertionError("an enum violation must be refused")
    except ApiException as e:
        assert e.status == 422
        message = json.loads(e.body)["message"]
        assert 'spec.color: Unsupported value: "green": supported values: "red", "blue"' in message

    dynamic = DynamicClient(api_client)
    boxes = dynamic.resources.get(api_version=f"{GROUP}/v1", kind="Box")
    method, url, headers, _, _ = api_client.param_serialize(
        method="GET",
        resource_path=f"/apis/{GROUP}/v1/namespaces/default/boxes",
        header_params={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"},
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(method, url, header_params=headers)
    response.read()
    metadata_only = json.loads(response.data)
    assert metadata_only["kind"] == "PartialObjectMetadataList"
    assert metadata_only["items"][0]["metadata"]["name"] == "one"
    assert "spec" not in metadata_only["items"][0]
    assert boxes.get(namespace="default", name="one").spec.size == 5

    custom.delete_namespaced_custom_object(GROUP, "v1", "default", "boxes", "one")
    extensions.delete_custom_resource_definition(f"boxes.{GROUP}")
