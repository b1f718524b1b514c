//! Master instances on EC2: launched one per name from `[aws.masters]`,
//! tagged `berth.dev/role=master`, and described back in name order so the
//! cluster's endpoint lists their addresses.

use berth_api::nodepool::AwsTemplate;

use super::{AwsError, Ec2, Instance, LaunchRequest, Role, NAME_TAG, ROLE_TAG};

/// A master instance and its name.
#[derive(Debug, Clone, PartialEq)]
pub struct Master {
    /// Its `Name` tag (`CLUSTER-master-1`).
    pub name: String,
    /// The instance.
    pub instance: Instance,
}

impl Master {
    /// The address the cluster reaches it on.
    pub fn address(&self, public: bool) -> Option<&str> {
        if public {
            self.instance.public_ip.as_deref()
        } else {
            self.instance.private_ip.as_deref()
        }
    }
}

impl Ec2 {
    /// Launches (or finds) a master instance for every name.
    pub async fn launch_masters(
        &self,
        names: &[String],
        template: &AwsTemplate,
        user_data: &str,
    ) -> Result<Vec<Master>, AwsError> {
        let mut masters = Vec::new();
        for name in names {
            let instance = self
                .launch(&LaunchRequest {
                    name,
                    role: Role::Master,
                    pool: None,
                    template,
                    user_data,
                })
                .await?;
            masters.push(Master {
                name: name.clone(),
                instance,
            });
        }
        Ok(masters)
    }

    /// The cluster's live master instances, by name.
    pub async fn masters(&self) -> Result<Vec<Master>, AwsError> {
        let mut masters: Vec<Master> = self
            .list_tagged(&[(ROLE_TAG, Role::Master.as_str())])
            .await?
            .into_iter()
            .filter(Instance::live)
            .map(|instance| Master {
                name: instance.tag(NAME_TAG).unwrap_or_default().to_owned(),
                instance,
            })
            .collect();
        masters.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(masters)
    }
}

/// `https://ADDRESS:PORT` of every master with an address, in name order:
/// the servers agents fail over between.
pub fn api_endpoints(masters: &[Master], public: bool, port: u16) -> Vec<String> {
    masters
        .iter()
        .filter_map(|m| m.address(public))
        .map(|address| format!("https://{address}:{port}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_use_the_chosen_addresses() {
        let master = |name: &str, private: &str, public: Option<&str>| Master {
            name: name.into(),
            instance: Instance {
                private_ip: Some(private.into()),
                public_ip: public.map(str::to_owned),
                ..Instance::default()
            },
        };
        let masters = [
            master("c-master-1", "10.0.0.1", Some("54.0.0.1")),
            master("c-master-2", "10.0.0.2", None),
        ];
        assert_eq!(
            api_endpoints(&masters, false, 6443),
            ["https://10.0.0.1:6443", "https://10.0.0.2:6443"]
        );
        assert_eq!(
            api_endpoints(&masters, true, 6443),
            ["https://54.0.0.1:6443"]
        );
    }
}
