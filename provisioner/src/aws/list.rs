//! DescribeInstances by tag: the instances of a cluster, of a pool, or one by
//! name. Terminated instances stay visible in EC2 for a while; callers
//! filter with [`Instance::live`].

use aws_sdk_ec2::types::Filter;

use super::{AwsError, Ec2, Instance, Role, CLUSTER_TAG, NAME_TAG, POOL_TAG, ROLE_TAG};

impl Ec2 {
    /// Every instance of the cluster carrying all of `tags`.
    pub async fn list_tagged(&self, tags: &[(&str, &str)]) -> Result<Vec<Instance>, AwsError> {
        let mut filters = vec![tag_filter(CLUSTER_TAG, &self.cluster)];
        filters.extend(tags.iter().map(|(key, value)| tag_filter(key, value)));
        let pages = self
            .backoff
            .pages(
                AwsError::is_throttling,
                |token| {
                    let request = self
                        .client
                        .describe_instances()
                        .set_filters(Some(filters.clone()))
                        .set_next_token(token);
                    async move {
                        request
                            .send()
                            .await
                            .map_err(|e| AwsError::from_sdk("DescribeInstances", e))
                    }
                },
                |page| page.next_token(),
            )
            .await?;
        let mut instances: Vec<Instance> = pages
            .iter()
            .flat_map(|page| page.reservations())
            .flat_map(|reservation| reservation.instances())
            .map(Instance::from_sdk)
            .collect();
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(instances)
    }

    /// The node instances of `pool`, live or not.
    pub async fn list_pool(&self, pool: &str) -> Result<Vec<Instance>, AwsError> {
        self.list_tagged(&[(ROLE_TAG, Role::Node.as_str()), (POOL_TAG, pool)])
            .await
    }

    /// The live instance of `role` named `name`, if any.
    pub async fn find(&self, role: Role, name: &str) -> Result<Option<Instance>, AwsError> {
        let found = self
            .list_tagged(&[(ROLE_TAG, role.as_str()), (NAME_TAG, name)])
            .await?;
        Ok(found.into_iter().find(Instance::live))
    }

    /// The instance with this id, whatever its tags.
    pub async fn describe(&self, id: &str) -> Result<Option<Instance>, AwsError> {
        let out = self
            .backoff
            .run(AwsError::is_throttling, || async {
                self.client
                    .describe_instances()
                    .instance_ids(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("DescribeInstances", e))
            })
            .await;
        match out {
            Ok(out) => Ok(out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .map(Instance::from_sdk)
                .next()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}
