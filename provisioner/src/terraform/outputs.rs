//! The outputs `terraform/examples/cluster` defines, read from
//! `terraform output -json` (`{"NAME": {"value": …, "type": …, "sensitive": …}}`)
//! with an error naming the output, or the path inside it, that is missing
//! or of the wrong type. Outputs berth does not use (subnets, security
//! groups …) are ignored, so a root module may print more.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::TerraformError;

/// What the outputs say about the cluster to build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TerraformCluster {
    /// `cluster_name`: the cluster's name.
    pub name: String,
    /// `region`: the AWS region (`[aws] region`).
    pub region: Option<String>,
    /// `masters`: the control-plane machines.
    pub masters: Vec<Machine>,
    /// `datastore`; without it 1 master means sqlite and more mean etcd.
    pub datastore: Option<String>,
    /// `network_mode`; without it `vxlan`, since a VPC does not route pod addresses.
    pub network_mode: Option<String>,
    /// `api_endpoint`: the load balancer's or DNS name in front of the masters.
    pub api_endpoint: Option<String>,
    /// `cluster_cidr`: the pod range.
    pub cluster_cidr: Option<String>,
    /// `service_cidr`: the ClusterIP range.
    pub service_cidr: Option<String>,
    /// `data_dir`: where berth keeps its files on every machine.
    pub data_dir: Option<String>,
    /// `berth_binary_url`: where node pool instances download berth
    /// (`[aws] binary_url`).
    pub binary_url: Option<String>,
    /// `ssh_user`: the login the AMI has (`admin` on Debian's).
    pub ssh_user: Option<String>,
    /// `ssh_key_file`: the private key of the instances' key pair, on this machine.
    pub ssh_key_file: Option<String>,
    /// `ssh_jump_host`: the bastion in front of private subnets.
    pub ssh_jump_host: Option<String>,
    /// `ssh_known_hosts`: the known_hosts file host keys are checked against.
    pub ssh_known_hosts: Option<String>,
    /// `ssh_host_key_policy`: `strict` or `accept-new`.
    pub ssh_host_key_policy: Option<String>,
    /// `ssh_pools`: pools of machines Terraform made that join over SSH.
    pub ssh_pools: Vec<SshPool>,
    /// `node_pools`: pools whose EC2 instances the NodePool controller
    /// launches itself (`provider = "aws"` pools).
    pub node_pools: Vec<AwsPool>,
}

/// One `node_pools` entry: the `pool` output of `terraform/modules/nodepool`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AwsPool {
    /// The pool's name (its key in `node_pools`).
    pub name: String,
    /// The AMI.
    pub ami: String,
    /// Instance types in order of preference.
    pub instance_types: Vec<String>,
    /// Subnets the instances are spread over.
    pub subnet_ids: Vec<String>,
    /// Security groups of the instances.
    pub security_group_ids: Vec<String>,
    /// The instance profile the instances run as.
    pub instance_profile: Option<String>,
    /// EC2 key pair.
    pub key_name: Option<String>,
    /// Root volume size in GiB.
    pub root_volume_size: Option<i64>,
    /// Whether it is a GPU pool.
    pub gpu: bool,
    /// Whether spot instances come first.
    pub spot: bool,
}

/// One machine Terraform made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Machine {
    /// The address SSH reaches.
    pub host: String,
    /// Its Node name, when not the host.
    pub name: Option<String>,
}

/// One `ssh_pools` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SshPool {
    /// The pool's name.
    pub name: String,
    /// Its machines (at least one).
    pub machines: Vec<Machine>,
    /// Labels every node of the pool gets.
    pub labels: BTreeMap<String, String>,
    /// Taints in kubectl's syntax.
    pub taints: Vec<String>,
    /// Whether it is a GPU pool.
    pub gpu: bool,
}

/// Reads the whole outputs document.
pub(super) fn parse(file: &str, text: &str) -> Result<TerraformCluster, TerraformError> {
    let json = |reason: String| TerraformError::Json {
        file: file.to_owned(),
        reason,
    };
    let document: Value = serde_json::from_str(text).map_err(|e| json(e.to_string()))?;
    let Value::Object(outputs) = document else {
        return Err(json(format!("the top level is {}", kind(&document))));
    };
    let reader = Reader { file, outputs };
    Ok(TerraformCluster {
        name: reader.required_string("cluster_name", "the cluster's name, a DNS-1123 label")?,
        region: reader.optional_string("region")?,
        masters: reader.masters()?,
        datastore: reader.optional_string("datastore")?,
        network_mode: reader.optional_string("network_mode")?,
        api_endpoint: reader.optional_string("api_endpoint")?,
        cluster_cidr: reader.optional_string("cluster_cidr")?,
        service_cidr: reader.optional_string("service_cidr")?,
        data_dir: reader.optional_string("data_dir")?,
        binary_url: reader.optional_string("berth_binary_url")?,
        ssh_user: reader.optional_string("ssh_user")?,
        ssh_key_file: reader.optional_string("ssh_key_file")?,
        ssh_jump_host: reader.optional_string("ssh_jump_host")?,
        ssh_known_hosts: reader.optional_string("ssh_known_hosts")?,
        ssh_host_key_policy: reader.optional_string("ssh_host_key_policy")?,
        ssh_pools: reader.ssh_pools()?,
        node_pools: reader.node_pools()?,
    })
}

const MASTERS_HINT: &str =
    "a list of objects with \"host\" (the address SSH reaches) and optionally \"name\"";
const MACHINE_SHAPE: &str = "an object with \"host\" and optionally \"name\"";

struct Reader<'a> {
    file: &'a str,
    outputs: Map<String, Value>,
}

impl Reader<'_> {
    /// The `value` of output `key`; `None` when absent or null.
    fn value(&self, key: &str) -> Result<Option<&Value>, TerraformError> {
        let Some(output) = self.outputs.get(key) else {
            return Ok(None);
        };
        match output.get("value") {
            Some(Value::Null) => Ok(None),
            Some(value) => Ok(Some(value)),
            None => Err(self.wrong(
                key,
                "an object with \"value\", as `terraform output -json` prints",
                output,
            )),
        }
    }

    fn required_string(&self, key: &str, hint: &'static str) -> Result<String, TerraformError> {
        self.optional_string(key)?
            .ok_or_else(|| self.missing(key, hint))
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>, TerraformError> {
        match self.value(key)? {
            None => Ok(None),
            Some(value) => self.string(value, key).map(Some),
        }
    }

    fn masters(&self) -> Result<Vec<Machine>, TerraformError> {
        let list = self
            .value("masters")?
            .ok_or_else(|| self.missing("masters", MASTERS_HINT))?;
        let machines = self.machines(list, "masters", MASTERS_HINT)?;
        if machines.is_empty() {
            return Err(self.missing("masters[0]", MASTERS_HINT));
        }
        Ok(machines)
    }

    fn machines(
        &self,
        list: &Value,
        at: &str,
        expected: &'static str,
    ) -> Result<Vec<Machine>, TerraformError> {
        let Value::Array(items) = list else {
            return Err(self.wrong(at, expected, list));
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let at = format!("{at}[{index}]");
                let Value::Object(fields) = item else {
                    return Err(self.wrong(&at, MACHINE_SHAPE, item));
                };
                let host = field(fields, "host").ok_or_else(|| {
                    self.missing(&format!("{at}.host"), "the address SSH reaches")
                })?;
                let host = self.string(host, &format!("{at}.host"))?;
                let name = field(fields, "name")
                    .map(|name| self.string(name, &format!("{at}.name")))
                    .transpose()?;
                Ok(Machine { host, name })
            })
            .collect()
    }

    fn ssh_pools(&self) -> Result<Vec<SshPool>, TerraformError> {
        const SHAPE: &str = "a map of pool name to {machines, labels, taints, gpu}";
        self.each_pool("ssh_pools", SHAPE, |name, at, fields| {
            let machines = field(fields, "machines")
                .ok_or_else(|| self.missing(&format!("{at}.machines"), MASTERS_HINT))?;
            let machines = self.machines(machines, &format!("{at}.machines"), MASTERS_HINT)?;
            let labels = match field(fields, "labels") {
                None => BTreeMap::new(),
                Some(Value::Object(labels)) => labels
                    .iter()
                    .map(|(key, value)| {
                        Ok((
                            key.clone(),
                            self.string(value, &format!("{at}.labels.{key}"))?,
                        ))
                    })
                    .collect::<Result<_, TerraformError>>()?,
                Some(other) => {
                    return Err(self.wrong(&format!("{at}.labels"), "a map of strings", other))
                }
            };
            let taints = self.strings(fields, &at, "taints")?;
            let gpu = self.flag(fields, &at, "gpu")?;
            Ok(SshPool {
                name: name.to_owned(),
                machines,
                labels,
                taints,
                gpu,
            })
        })
    }

    fn node_pools(&self) -> Result<Vec<AwsPool>, TerraformError> {
        const SHAPE: &str = "a map of pool name to the nodepool module's pool output";
        self.each_pool("node_pools", SHAPE, |name, at, fields| {
            let ami = field(fields, "ami")
                .ok_or_else(|| self.missing(&format!("{at}.ami"), "the AMI the pool boots"))?;
            let root_volume_size = match field(fields, "root_volume_size") {
                None => None,
                Some(Value::Number(size)) if size.as_i64().is_some() => size.as_i64(),
                Some(other) => {
                    return Err(self.wrong(
                        &format!("{at}.root_volume_size"),
                        "a whole number of GiB",
                        other,
                    ))
                }
            };
            Ok(AwsPool {
                name: name.to_owned(),
                ami: self.string(ami, &format!("{at}.ami"))?,
                instance_types: self.strings(fields, &at, "instance_types")?,
                subnet_ids: self.strings(fields, &at, "subnet_ids")?,
                security_group_ids: self.strings(fields, &at, "security_group_ids")?,
                instance_profile: self.optional_field(fields, &at, "instance_profile")?,
                key_name: self.optional_field(fields, &at, "key_name")?,
                root_volume_size,
                gpu: self.flag(fields, &at, "gpu")?,
                spot: self.flag(fields, &at, "spot")?,
            })
        })
    }

    /// Output `key`, a map of pool name to an object (`shape`), read entry
    /// by entry with `read(name, path, fields)`; empty when absent.
    fn each_pool<T>(
        &self,
        key: &str,
        shape: &'static str,
        read: impl Fn(&str, String, &Map<String, Value>) -> Result<T, TerraformError>,
    ) -> Result<Vec<T>, TerraformError> {
        let Some(value) = self.value(key)? else {
            return Ok(Vec::new());
        };
        let Value::Object(pools) = value else {
            return Err(self.wrong(key, shape, value));
        };
        pools
            .iter()
            .map(|(name, pool)| {
                let at = format!("{key}.{name}");
                let Value::Object(fields) = pool else {
                    return Err(self.wrong(&at, shape, pool));
                };
                read(name, at, fields)
            })
            .collect()
    }

    /// Field `key` of the object at `at`: a list of strings, empty when absent.
    fn strings(
        &self,
        fields: &Map<String, Value>,
        at: &str,
        key: &str,
    ) -> Result<Vec<String>, TerraformError> {
        match field(fields, key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.string(item, &format!("{at}.{key}[{i}]")))
                .collect(),
            Some(other) => Err(self.wrong(&format!("{at}.{key}"), "a list of strings", other)),
        }
    }

    /// Field `key` of the object at `at`: a bool, false when absent.
    fn flag(
        &self,
        fields: &Map<String, Value>,
        at: &str,
        key: &str,
    ) -> Result<bool, TerraformError> {
        match field(fields, key) {
            None => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(other) => Err(self.wrong(&format!("{at}.{key}"), "a bool", other)),
        }
    }

    /// Field `key` of the object at `at`: a string, when present.
    fn optional_field(
        &self,
        fields: &Map<String, Value>,
        at: &str,
        key: &str,
    ) -> Result<Option<String>, TerraformError> {
        field(fields, key)
            .map(|value| self.string(value, &format!("{at}.{key}")))
            .transpose()
    }

    fn string(&self, value: &Value, at: &str) -> Result<String, TerraformError> {
        match value {
            Value::String(text) => Ok(text.clone()),
            other => Err(self.wrong(at, "a string", other)),
        }
    }

    fn missing(&self, key: &str, hint: &'static str) -> TerraformError {
        TerraformError::Missing {
            file: self.file.to_owned(),
            key: key.to_owned(),
            hint,
        }
    }

    fn wrong(&self, key: &str, expected: &'static str, found: &Value) -> TerraformError {
        TerraformError::WrongType {
            file: self.file.to_owned(),
            key: key.to_owned(),
            expected,
            found: kind(found),
        }
    }
}

/// Field `key` of an object output, `None` when absent or null (Terraform
/// writes null for an unset optional attribute).
fn field<'v>(fields: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    fields.get(key).filter(|value| !value.is_null())
}

/// The JSON kind of `value`, as errors name it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
