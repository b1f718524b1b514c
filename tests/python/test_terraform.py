"""Checks terraform/ without a Terraform binary: every .tf parses with
python-hcl2, modules declare typed and described variables and described
outputs, pin Terraform and the AWS provider, the example passes only inputs
its modules declare and reads only outputs they define, and checkov finds no
failed check. Needs no berth server."""

import glob
import json
import os
import re
import shutil
import subprocess
import time

import hcl2
import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TERRAFORM = os.path.join(ROOT, "terraform")
EXAMPLE = os.path.join(TERRAFORM, "examples", "cluster")
MODULES = sorted(glob.glob(os.path.join(TERRAFORM, "modules", "*")))
SAVED_OUTPUTS = os.path.join(ROOT, "provisioner", "tests", "data", "terraform-outputs.json")

# What `berth cluster create --from-terraform` reads from the outputs.
BERTH_OUTPUTS = {
    "cluster_name", "region", "berth_binary_url", "masters", "datastore", "network_mode", "api_endpoint",
    "ssh_user", "ssh_key_file", "ssh_jump_host", "ssh_host_key_policy", "ssh_pools",
    "node_pools",
}


def unquote(value):
    """python-hcl2 keeps the quotes of strings and block labels."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse_dir(directory):
    """Every .tf in `directory`, parsed and merged: {block type: [blocks]}."""
    merged = {}
    files = sorted(glob.glob(os.path.join(directory, "*.tf")))
    assert files, f"no .tf files in {directory}"
    for path in files:
        with open(path) as f:
            for kind, blocks in hcl2.load(f).items():
                merged.setdefault(kind, []).extend(blocks)
    return merged


def labelled(parsed, kind):
    """{label: body} for blocks with one label (variable, output, module)."""
    out = {}
    for block in parsed.get(kind, []):
        for label, body in block.items():
            out[unquote(label)] = body
    return out


def all_dirs():
    return MODULES + [EXAMPLE]


def test_every_file_parses():
    files = glob.glob(os.path.join(TERRAFORM, "**", "*.tf"), recursive=True)
    assert len(files) >= 12
    for path in files:
        with open(path) as f:
            assert hcl2.load(f), path


def test_modules_exist():
    names = {os.path.basename(m) for m in MODULES}
    assert {"network", "masters", "nodepool", "instance_profile"} <= names


@pytest.mark.parametrize("directory", all_dirs(), ids=os.path.basename)
def test_terraform_and_provider_are_pinned(directory):
    blocks = parse_dir(directory).get("terraform", [])
    assert len(blocks) == 1, f"{directory}: one terraform block"
    block = blocks[0]
    assert unquote(block["required_version"]) == ">= 1.5"
    providers = {}
    for entry in block["required_providers"]:
        providers.update({k: v for k, v in entry.items() if not k.startswith("__")})
    assert set(providers) == {"aws"}
    assert unquote(providers["aws"]["source"]) == "hashicorp/aws"
    assert unquote(providers["aws"]["version"]) == "~> 5.0"


@pytest.mark.parametrize("directory", all_dirs(), ids=os.path.basename)
def test_variables_have_types_and_descriptions(directory):
    variables = labelled(parse_dir(directory), "variable")
    assert variables, directory
    for name, body in variables.items():
        assert unquote(body.get("description", "")).strip(), f"{directory}: variable {name} has no description"
        assert body.get("type"), f"{directory}: variable {name} has no type"


@pytest.mark.parametrize("directory", all_dirs(), ids=os.path.basename)
def test_outputs_have_descriptions(directory):
    outputs = labelled(parse_dir(directory), "output")
    assert outputs, directory
    for name, body in outputs.items():
        assert unquote(body.get("description", "")).strip(), f"{directory}: output {name} has no description"
        assert "value" in body, f"{directory}: output {name} has no value"


META = {"source", "for_each", "count", "depends_on", "providers", "__is_block__", "__start_line__", "__end_line__"}


@pytest.mark.parametrize("directory", all_dirs(), ids=os.path.basename)
def test_module_calls_match_the_modules_interfaces(directory):
    """Each module block passes only inputs the module declares, every
    required one, and `module.NAME.OUTPUT` names outputs it defines."""
    modules = labelled(parse_dir(directory), "module")
    interfaces = {}
    for name, body in modules.items():
        source = os.path.normpath(os.path.join(directory, unquote(body["source"])))
        assert os.path.isdir(source), f"module {name}: {source}"
        parsed = parse_dir(source)
        variables = labelled(parsed, "variable")
        interfaces[name] = set(labelled(parsed, "output"))
        passed = {k for k in body if k not in META}
        unknown = passed - set(variables)
        assert not unknown, f"module {name} is given inputs it does not declare: {unknown}"
        required = {v for v, b in variables.items() if "default" not in b}
        assert required <= passed, f"module {name} misses required inputs: {required - passed}"
    text = "".join(open(p).read() for p in glob.glob(os.path.join(directory, "*.tf")))
    for module, output in set(re.findall(r"module\.(\w+)(?:\[[^\]]*\])?\.(\w+)", text)):
        assert module in interfaces, f"module.{module} is not called here"
        assert output in interfaces[module], f"module.{module}.{output} is not an output of module {module}"


def test_example_wires_the_three_modules():
    modules = labelled(parse_dir(EXAMPLE), "module")
    assert set(modules) == {"network", "masters", "pool"}
    # `for name, pool in module.pool : … pool.pool`: the for_each'd module's output.
    nodepool = os.path.join(TERRAFORM, "modules", "nodepool")
    assert "pool" in labelled(parse_dir(nodepool), "output")


def test_example_outputs_are_what_berth_reads():
    outputs = set(labelled(parse_dir(EXAMPLE), "output"))
    missing = BERTH_OUTPUTS - outputs
    assert not missing, f"examples/cluster/outputs.tf lacks {missing}"
    with open(SAVED_OUTPUTS) as f:
        saved = json.load(f)
    assert set(saved) == outputs, "the saved outputs file must have exactly the example's outputs"
    for name, output in saved.items():
        assert set(output) == {"value", "type", "sensitive"}, name


def test_saved_node_pools_have_the_nodepool_modules_fields():
    """Each saved `node_pools` entry is the nodepool module's `pool` output,
    which `--from-terraform` turns into a `provider = "aws"` pool."""
    nodepool = os.path.join(TERRAFORM, "modules", "nodepool")
    value = labelled(parse_dir(nodepool), "output")["pool"]["value"]
    if isinstance(value, list):
        value = value[0]
    with open(SAVED_OUTPUTS) as f:
        pools = json.load(f)["node_pools"]["value"]
    assert pools
    for name, pool in pools.items():
        assert set(pool) == set(value), name


def _checkov():
    explicit = os.environ.get("BERTH_CHECKOV")
    if explicit:
        return explicit
    default = "/var/tmp/berth-checkov-venv/bin/checkov"
    return default if os.path.exists(default) else shutil.which("checkov")


def test_checkov_finds_no_failed_check():
    checkov = _checkov()
    if not checkov:
        pytest.skip("checkov is not installed (tests/run-all.sh installs it in its own venv)")
    started = time.monotonic()
    run = subprocess.run(
        # --skip-download: use the checks shipped in the package, ask no server.
        [checkov, "-d", TERRAFORM, "--framework", "terraform", "--compact", "--quiet", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.monotonic() - started
    print(f"checkov took {seconds:.1f}s")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Failed checks: 0" in run.stdout, run.stdout
