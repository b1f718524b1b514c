#!/usr/bin/env python3
"""Regenerates api/src/protobuf/generated.rs, the field table behind berth's protobuf codec.

Two inputs, because neither alone says everything the codec must know:

* the `k8s-pb` crate (kube-rs's prost types) gives every message's fields: tag number, wire
  type, repeated/map, and which message a field refers to;
* the Kubernetes Go types (`k8s.io/api`, `k8s.io/apimachinery`, `k8s.io/kube-aggregator` and
  `k8s.io/apiextensions-apiserver` at the release k8s-pb was generated from) give what prost
  loses: the JSON name (`podIP`, not `pod_ip`), `omitempty`, whether the Go field is a pointer
  (a present zero survives) or a value (always on the wire, dropped from JSON when empty),
  `json:",inline"` embedding, and the proto message names (`PodIP`, which prost renames
  `PodIp`).

k8s-pb 0.9.0 was generated from Kubernetes 1.35, so the Go sources are the v0.35.0 tags of
github.com/kubernetes/{api,apimachinery,kube-aggregator,apiextensions-apiserver} (only read,
never built). Usage, from the repository root (k8s-pb's source is in the cargo registry once
any build has fetched the dev-dependency):

    for repo in api apimachinery kube-aggregator apiextensions-apiserver; do
        mkdir -p /tmp/k8s-go/$repo
        git -C <kubernetes/$repo clone> archive v0.35.0 | tar -x -C /tmp/k8s-go/$repo
    done
    python3 api/tools/gen_protobuf_table.py \
        --k8s-pb ~/.cargo/registry/src/*/k8s-pb-0.9.0 \
        --go-api /tmp/k8s-go/api --go-apimachinery /tmp/k8s-go/apimachinery \
        --go-kube-aggregator /tmp/k8s-go/kube-aggregator \
        --go-apiextensions-apiserver /tmp/k8s-go/apiextensions-apiserver

It writes api/src/protobuf/generated.rs (one line per field; `#[rustfmt::skip]` keeps it so)
and fails loudly when the two sources disagree, or when a message's JSON is not an object of
its fields (a Go named slice, a Go type with its own MarshalJSON such as Duration, a field Go
leaves out of JSON) and the codec has no hand-written shape for it (SPECIAL below; ExtraValue
and apiextensions' JSONSchemaPropsOr* have one, and SPECIAL_LAYOUTS checks k8s-pb's fields
against what those shapes read). To serve a new kind, add it to ROOTS below and
rerun; everything it references is pulled in. Add a fixture for it under
api/src/protobuf/fixtures/objects/ too (a test insists).
"""

import argparse
import pathlib
import re
import sys

# (proto package, API version, messages). Kinds first; a `...List` is a kind too.
ROOTS = [
    (
        "k8s.io.api.core.v1",
        "v1",
        [
            "Binding", "ComponentStatus", "ComponentStatusList", "ConfigMap", "ConfigMapList",
            "Endpoints", "EndpointsList", "Event", "EventList", "LimitRange", "LimitRangeList",
            "Namespace", "NamespaceList", "Node", "NodeList", "PersistentVolume",
            "PersistentVolumeList", "PersistentVolumeClaim", "PersistentVolumeClaimList", "Pod",
            "PodList", "PodTemplate", "PodTemplateList", "ReplicationController",
            "ReplicationControllerList", "ResourceQuota", "ResourceQuotaList", "Secret",
            "SecretList", "Service", "ServiceList", "ServiceAccount", "ServiceAccountList",
        ],
    ),
    (
        "k8s.io.api.admissionregistration.v1",
        "admissionregistration.k8s.io/v1",
        [
            "MutatingWebhookConfiguration", "MutatingWebhookConfigurationList",
            "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyList",
            "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBindingList",
            "ValidatingWebhookConfiguration", "ValidatingWebhookConfigurationList",
        ],
    ),
    (
        "k8s.io.api.apps.v1",
        "apps/v1",
        [
            "ControllerRevision", "ControllerRevisionList", "DaemonSet", "DaemonSetList",
            "Deployment", "DeploymentList", "ReplicaSet", "ReplicaSetList", "StatefulSet",
            "StatefulSetList",
        ],
    ),
    (
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1",
        "apiextensions.k8s.io/v1",
        ["CustomResourceDefinition", "CustomResourceDefinitionList"],
    ),
    (
        "k8s.io.api.authentication.v1",
        "authentication.k8s.io/v1",
        ["SelfSubjectReview", "TokenRequest", "TokenReview"],
    ),
    (
        "k8s.io.api.authorization.v1",
        "authorization.k8s.io/v1",
        [
            "LocalSubjectAccessReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview",
            "SubjectAccessReview",
        ],
    ),
    (
        "k8s.io.api.autoscaling.v1",
        "autoscaling/v1",
        ["HorizontalPodAutoscaler", "HorizontalPodAutoscalerList", "Scale"],
    ),
    ("k8s.io.api.autoscaling.v2", "autoscaling/v2", ["HorizontalPodAutoscaler", "HorizontalPodAutoscalerList"]),
    ("k8s.io.api.batch.v1", "batch/v1", ["CronJob", "CronJobList", "Job", "JobList"]),
    (
        "k8s.io.api.certificates.v1",
        "certificates.k8s.io/v1",
        ["CertificateSigningRequest", "CertificateSigningRequestList"],
    ),
    ("k8s.io.api.coordination.v1", "coordination.k8s.io/v1", ["Lease", "LeaseList"]),
    ("k8s.io.api.discovery.v1", "discovery.k8s.io/v1", ["EndpointSlice", "EndpointSliceList"]),
    ("k8s.io.api.events.v1", "events.k8s.io/v1", ["Event", "EventList"]),
    (
        "k8s.io.api.flowcontrol.v1",
        "flowcontrol.apiserver.k8s.io/v1",
        ["FlowSchema", "FlowSchemaList", "PriorityLevelConfiguration", "PriorityLevelConfigurationList"],
    ),
    (
        "k8s.io.api.networking.v1",
        "networking.k8s.io/v1",
        [
            "IPAddress", "IPAddressList", "Ingress", "IngressList", "IngressClass",
            "IngressClassList", "NetworkPolicy", "NetworkPolicyList", "ServiceCIDR",
            "ServiceCIDRList",
        ],
    ),
    ("k8s.io.api.node.v1", "node.k8s.io/v1", ["RuntimeClass", "RuntimeClassList"]),
    (
        "k8s.io.api.policy.v1",
        "policy/v1",
        ["Eviction", "PodDisruptionBudget", "PodDisruptionBudgetList"],
    ),
    (
        "k8s.io.api.rbac.v1",
        "rbac.authorization.k8s.io/v1",
        [
            "ClusterRole", "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList",
            "Role", "RoleList", "RoleBinding", "RoleBindingList",
        ],
    ),
    ("k8s.io.api.scheduling.v1", "scheduling.k8s.io/v1", ["PriorityClass", "PriorityClassList"]),
    (
        "k8s.io.api.storage.v1",
        "storage.k8s.io/v1",
        [
            "CSIDriver", "CSIDriverList", "CSINode", "CSINodeList", "CSIStorageCapacity",
            "CSIStorageCapacityList", "StorageClass", "StorageClassList", "VolumeAttachment",
            "VolumeAttachmentList", "VolumeAttributesClass", "VolumeAttributesClassList",
        ],
    ),
    (
        "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1",
        "apiregistration.k8s.io/v1",
        ["APIService", "APIServiceList"],
    ),
    # meta/v1 kinds travel under many API versions; the codec resolves them by kind alone.
    (
        "k8s.io.apimachinery.pkg.apis.meta.v1",
        None,
        ["Status", "DeleteOptions", "ListMeta", "ObjectMeta", "WatchEvent", "PartialObjectMetadata", "PartialObjectMetadataList"],
    ),
]

# Messages whose wire and JSON shapes differ; the codec converts them by hand.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawJson",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    # apiextensions' JSON marshals its `raw` bytes verbatim, "null" when empty, as RawExtension.
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON": "RawJson",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
    # A Go `[]string` (map values of `extra`): protobuf wraps it in a message, JSON does not.
    "k8s.io.api.authentication.v1.ExtraValue": "StringArray",
    "k8s.io.api.authorization.v1.ExtraValue": "StringArray",
    "k8s.io.api.certificates.v1.ExtraValue": "StringArray",
    # A schema or another JSON type, as their hand-written Go marshallers decide.
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": "SchemaOrArray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": "SchemaOrBool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": "SchemaOrStringArray",
}

# The fields the codec's hand-written shapes read and write (special/unions.rs), as
# (tag, prost label, scalar or "message"): k8s-pb must agree, or the codec would be wrong.
# A union's message fields all name its schema message, which the table then carries.
SPECIAL_LAYOUTS = {
    "StringArray": [(1, "repeated", "String")],
    "SchemaOrArray": [(1, "optional", "message"), (2, "repeated", "message")],
    "SchemaOrBool": [(1, "optional", "Bool"), (2, "optional", "message")],
    "SchemaOrStringArray": [(1, "optional", "message"), (2, "repeated", "String")],
}

SCALARS = {
    "string": "String",
    "bytes": "Bytes",
    "bool": "Bool",
    "int32": "Int32",
    "int64": "Int64",
    "double": "Double",
}


def fail(message):
    sys.exit(f"gen_protobuf_table: {message}")


# ---------------------------------------------------------------- k8s-pb (prost) source


def read_type_text(body, start):
    """The Rust type after `pub name:`, up to the comma at generic depth 0."""
    depth = 0
    for index in range(start, len(body)):
        char = body[index]
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        elif char == "," and depth == 0:
            return re.sub(r"\s+", "", body[start:index])
    fail("unterminated field type")


def resolve_path(module, path):
    """Turns a prost type path, relative to `module` (a tuple of module names), into
    (proto package, prost struct name)."""
    parts = path.split("::")
    name = parts.pop()
    if parts and parts[0] == "crate":
        base = []
        parts = parts[1:]
    else:
        base = list(module)
        while parts and parts[0] == "super":
            base.pop()
            parts = parts[1:]
    return package_of(tuple(base + parts)), name


def package_of(module):
    # The proto packages keep the underscores of k8s-pb's modules
    # (`k8s.io.kube_aggregator.pkg.apis.apiregistration.v1`).
    return "k8s.io." + ".".join(module)


def message_path(type_text, is_map):
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        while type_text.startswith(wrapper):
            type_text = type_text[len(wrapper) : -1]
    if is_map:
        inner = type_text[type_text.index("<") + 1 : -1]
        type_text = inner.split(",", 1)[1]
    return type_text.rstrip(",")


def parse_prost(root):
    """{(package, prost name): [field dict]} for every message in k8s-pb."""
    messages = {}
    src = root / "src"
    for path in sorted(src.rglob("mod.rs")):
        module = path.parent.relative_to(src).parts
        text = path.read_text()
        # An empty message (`CustomResourceSubresourceStatus`) is `pub struct Name {}`.
        for struct in re.finditer(r"\npub struct (\w+) \{(?:\n(.*?)\n)?\}", text, re.S):
            name, body = struct.group(1), struct.group(2) or ""
            fields = []
            for attr in re.finditer(r"#\[prost\(([^)]*)\)\]\s*pub (?:r#)?(\w+):", body):
                args = attr.group(1)
                type_text = read_type_text(body, attr.end())
                tag = int(re.search(r'tag = "(\d+)"', args).group(1))
                field = {"tag": tag, "rust": attr.group(2)}
                map_match = re.match(r'btree_map = "string, (\w+)"', args)
                if map_match:
                    field["label"] = "map"
                    kind = map_match.group(1)
                else:
                    kind = re.match(r'(\w+)', args).group(1)
                    field["label"] = "repeated" if ", repeated" in args else "optional"
                if kind == "message":
                    path_text = message_path(type_text, field["label"] == "map")
                    field["message"] = resolve_path(module, path_text)
                elif kind in SCALARS:
                    field["scalar"] = SCALARS[kind]
                else:
                    fail(f"{name}.{field['rust']}: unknown prost kind {kind}")
                fields.append(field)
            messages[(package_of(module), name)] = fields
        for resource in re.finditer(
            r'impl crate::Resource for (\w+) \{\s*const API_VERSION: &\'static str = "([^"]+)";', text
        ):
            RESOURCE_API_VERSIONS[(package_of(module), resource.group(1))] = resource.group(2)
    return messages


# (package, prost name) -> apiVersion, from k8s-pb's `impl Resource`, to check ROOTS against.
RESOURCE_API_VERSIONS = {}


# ---------------------------------------------------------------- Go source


GO_FIELD = re.compile(r"^\s*(?:(\w+)\s+)?([\w.*\[\]]+)\s+`([^`]*)`")


def go_dir(args, package):
    if package.startswith("k8s.io.api."):
        return args.go_api / package[len("k8s.io.api.") :].replace(".", "/")
    if package.startswith("k8s.io.apimachinery."):
        return args.go_apimachinery / package[len("k8s.io.apimachinery.") :].replace(".", "/")
    if package.startswith("k8s.io.kube_aggregator."):
        return args.go_kube_aggregator / package[len("k8s.io.kube_aggregator.") :].replace(".", "/")
    if package.startswith("k8s.io.apiextensions_apiserver."):
        return args.go_apiextensions_apiserver / package[len("k8s.io.apiextensions_apiserver.") :].replace(".", "/")
    fail(f"no Go source for package {package}")


def parse_go(directory):
    """({struct name: [field dict]}, {named type: underlying type}, {types with their own JSON
    (un)marshaller}) for one Go package."""
    structs, named, marshallers = {}, {}, set()
    for path in sorted(directory.glob("*.go")):
        if path.name.endswith("_test.go") or path.name.startswith(("generated.", "zz_generated")):
            continue
        text = path.read_text()
        # `type Name struct{}` is an empty message (`CustomResourceSubresourceStatus`).
        for struct in re.finditer(r"^type (\w+) struct ?\{(?:\}|\n(.*?)^\})", text, re.M | re.S):
            fields = []
            for line in (struct.group(2) or "").splitlines():
                if line.strip().startswith("//"):
                    continue
                match = GO_FIELD.match(line)
                if not match:
                    continue
                go_name, go_type, tags = match.groups()
                protobuf = re.search(r'protobuf:"(\w+),(\d+),', tags)
                if not protobuf:
                    continue
                json_tag = re.search(r'json:"([^"]*)"', tags)
                json_parts = json_tag.group(1).split(",") if json_tag else [go_name or go_type]
                fields.append(
                    {
                        "number": int(protobuf.group(2)),
                        "type": go_type,
                        "json": json_parts[0],
                        "options": set(json_parts[1:]),
                    }
                )
            structs[struct.group(1)] = fields
        for alias in re.finditer(r"^type (\w+) (\[\][\w.*]+|map\[[^\]]+\][\w.*\[\]]+)\s*$", text, re.M):
            named[alias.group(1)] = alias.group(2)
        for method in re.finditer(r"^func \(\w* ?\*?(\w+)\) (?:Unm|M)arshalJSON\(", text, re.M):
            marshallers.add(method.group(1))
    return structs, named, marshallers


# ---------------------------------------------------------------- the table


def screaming(name):
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return name.upper()


def static_name(full_name):
    package, name = full_name.rsplit(".", 1)
    short = package[len("k8s.io.") :]
    for prefix in ("api.", "apimachinery.pkg.apis.", "apimachinery.pkg.util.", "apimachinery.pkg.api.", "apimachinery.pkg."):
        if short.startswith(prefix):
            short = short[len(prefix) :]
            break
    return short.replace(".", "_").replace("-", "_").upper() + "_" + screaming(name)


class Generator:
    def __init__(self, args):
        self.args = args
        self.prost = parse_prost(args.k8s_pb)
        self.go = {}
        self.messages = {}  # full proto name -> rendered description
        self.prost_names = {}  # (package, prost name) -> full proto name

    def go_package(self, package):
        if package not in self.go:
            self.go[package] = parse_go(go_dir(self.args, package))
        return self.go[package]

    def go_struct_name(self, package, prost_name):
        structs, named, _ = self.go_package(package)
        for name in list(structs) + list(named):
            if name.lower() == prost_name.lower():
                return name
        fail(f"no Go type for {package}.{prost_name}")

    def full_name(self, key):
        if key not in self.prost_names:
            package, prost_name = key
            if key not in self.prost:
                fail(f"k8s-pb has no message {package}.{prost_name}")
            self.prost_names[key] = f"{package}.{self.go_struct_name(package, prost_name)}"
        return self.prost_names[key]

    def visit(self, key):
        full = self.full_name(key)
        if full in self.messages:
            return full
        self.messages[full] = None  # placeholder against cycles
        package, _ = key
        go_name = full.rsplit(".", 1)[1]
        if full in SPECIAL:
            self.messages[full] = self.special(full, key, SPECIAL[full])
            return full
        structs, named, marshallers = self.go_package(package)
        prost_fields = self.prost[key]
        if go_name in named:
            # e.g. ExtraValue: JSON is not an object of the proto's fields.
            fail(f"{full} (Go: {named[go_name]}) needs a hand-written shape in the codec")
        if go_name in marshallers:
            # e.g. Duration: Go writes its JSON by hand.
            fail(f"{full} has its own Go JSON (un)marshaller and needs a hand-written shape in the codec")
        go_fields = {field["number"]: field for field in structs[go_name]}
        go_order = [field["number"] for field in structs[go_name]]
        fields = []
        for field in sorted(prost_fields, key=lambda field: field["tag"]):
            go_field = go_fields.get(field["tag"])
            if go_field is None:
                fail(f"{full}: field {field['rust']} = {field['tag']} is not in the Go type")
            if go_field["json"] == "-":
                fail(f"{full}: field {field['rust']} = {field['tag']} is not in Go's JSON (json:\"-\")")
            ty = self.field_type(field)
            fields.append(
                {"number": field["tag"], "json": go_field["json"], "type": ty, "label": self.label(full, field, go_field)}
            )
        numbers = [field["number"] for field in fields]
        order = sorted(range(len(fields)), key=lambda index: go_order.index(numbers[index]))
        self.messages[full] = {"shape": "Fields", "fields": fields, "order": order}
        return full

    def special(self, full, key, shape):
        layout = SPECIAL_LAYOUTS.get(shape)
        if layout is None:
            return {"shape": shape}
        fields = sorted(self.prost[key], key=lambda field: field["tag"])
        found = [(field["tag"], field["label"], field.get("scalar", "message")) for field in fields]
        if found != layout:
            fail(f"{full}: k8s-pb's fields {found} are not the {shape} layout {layout} the codec reads")
        targets = {field["message"] for field in fields if "message" in field}
        if not targets:
            return {"shape": shape}
        if len(targets) != 1:
            fail(f"{full}: a {shape} must refer to one schema message, not {sorted(targets)}")
        return {"shape": shape, "schema": self.visit(targets.pop())}

    def field_type(self, field):
        if "message" in field:
            return ("Message", self.visit(field["message"]))
        return (field["scalar"], None)

    def label(self, full, field, go_field):
        options = go_field["options"]
        omitempty = "omitempty" in options
        if field["label"] == "repeated":
            return f"L::Repeated {{ omitempty: {str(omitempty).lower()} }}"
        if field["label"] == "map":
            return f"L::Map {{ omitempty: {str(omitempty).lower()} }}"
        if go_field["json"] == "":
            if "message" not in field:
                fail(f"{full}: inline field {field['tag']} is not a message")
            return "L::Inline"
        if go_field["type"].startswith("*") or field.get("scalar") == "Bytes":
            return "L::Optional"
        if "message" in field:
            return "L::Value(Omit::Zero)" if "omitzero" in options else "L::Value(Omit::Never)"
        return "L::Value(Omit::Empty)" if omitempty or "omitzero" in options else "L::Value(Omit::Never)"

    def kinds(self):
        rows = []
        for package, api_version, names in ROOTS:
            for name in names:
                key = self.find_prost(package, name)
                full = self.visit(key)
                known = RESOURCE_API_VERSIONS.get(key)
                if known is not None and known != api_version:
                    fail(f"ROOTS says {name} is {api_version}, k8s-pb says {known}")
                if api_version is not None:
                    rows.append((api_version, name, full))
        return sorted(rows)

    def find_prost(self, package, go_name):
        for key in self.prost:
            if key[0] == package and key[1].lower() == go_name.lower():
                return key
        fail(f"k8s-pb has no message {package}.{go_name}")

    def render_type(self, ty):
        kind, target = ty
        if kind == "Message":
            return f"T::Message(&{static_name(target)})"
        return f"T::{kind}"

    def render(self):
        kinds = self.kinds()
        out = [
            "// @generated by api/tools/gen_protobuf_table.py from k8s-pb 0.9.0 and the Kubernetes",
            "// v0.35.0 Go types; do not edit by hand. Rerun the script (see its docstring) instead.",
            "//! The field table: one static per protobuf message berth converts.",
            "",
            "use super::schema::{Field, Label as L, Message, Omit, SchemaOr, Shape, Type as T};",
            "",
            "const fn f(number: u32, json_name: &'static str, ty: T, label: L) -> Field {",
            "    Field { number, json_name, ty, label }",
            "}",
            "",
        ]
        for full in sorted(self.messages):
            description = self.messages[full]
            shape = description["shape"]
            out.append(f"pub(super) static {static_name(full)}: Message = Message {{")
            out.append(f'    name: "{full}",')
            if shape == "Fields":
                out.append("    shape: Shape::Fields {")
                out.append("        fields: &[")
                for field in description["fields"]:
                    out.append(
                        f'            f({field["number"]}, "{field["json"]}", {self.render_type(field["type"])}, {field["label"]}),'
                    )
                out.append("        ],")
                if len(description["order"]) > 255:
                    fail(f"{full}: too many fields")
                order = ", ".join(str(index) for index in description["order"])
                out.append(f"        json_order: &[{order}],")
                out.append("    },")
            elif "schema" in description:
                out.append(f"    shape: Shape::SchemaUnion {{ union: SchemaOr::{shape[len('SchemaOr'):]}, schema: &{static_name(description['schema'])} }},")
            else:
                out.append(f"    shape: Shape::{shape},")
            out.append("};")
            out.append("")
        out.append("/// Every message above, sorted by name for binary search.")
        out.append("pub(super) static MESSAGES: &[&Message] = &[")
        for full in sorted(self.messages):
            out.append(f"    &{static_name(full)},")
        out.append("];")
        out.append("")
        out.append("/// (apiVersion, kind) → message, sorted for binary search.")
        out.append("pub(super) static KINDS: &[(&str, &str, &Message)] = &[")
        for api_version, kind, full in kinds:
            out.append(f'    ("{api_version}", "{kind}", &{static_name(full)}),')
        out.append("];")
        return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k8s-pb", type=pathlib.Path, required=True, help="the k8s-pb 0.9 crate source")
    parser.add_argument("--go-api", type=pathlib.Path, required=True, help="a k8s.io/api source tree")
    parser.add_argument("--go-apimachinery", type=pathlib.Path, required=True, help="a k8s.io/apimachinery source tree")
    parser.add_argument(
        "--go-kube-aggregator", type=pathlib.Path, required=True, help="a k8s.io/kube-aggregator source tree"
    )
    parser.add_argument(
        "--go-apiextensions-apiserver",
        type=pathlib.Path,
        required=True,
        help="a k8s.io/apiextensions-apiserver source tree",
    )
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path(__file__).resolve().parent.parent / "src/protobuf/generated.rs",
    )
    args = parser.parse_args()
    text = Generator(args).render()
    names = set()
    for line in text.splitlines():
        match = re.match(r"pub\(super\) static (\w+): Message", line)
        if match:
            if match.group(1) in names:
                fail(f"two messages render as {match.group(1)}")
            names.add(match.group(1))
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(names)} messages)")


if __name__ == "__main__":
    main()
