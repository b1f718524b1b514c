//! kube-rs's `Resource` for berth's own kinds, so controllers use them with
//! typed `Api`s, watchers and event recorders like any k8s-openapi type.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::{ClusterResourceScope, Resource};

use crate::nodeclaim::NodeClaim;
use crate::nodepool::NodePool;

/// The group of berth's own kinds.
pub const GROUP: &str = "berth.dev";
/// Their version.
pub const VERSION: &str = "v1";

macro_rules! cluster_resource {
    ($type:ty, $kind:literal, $plural:literal) => {
        impl Resource for $type {
            type DynamicType = ();
            type Scope = ClusterResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }

            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(GROUP)
            }

            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(VERSION)
            }

            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

cluster_resource!(NodePool, "NodePool", "nodepools");
cluster_resource!(NodeClaim, "NodeClaim", "nodeclaims");
