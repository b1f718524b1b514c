//! The three patch types kube-apiserver accepts on `PATCH` (JSON patch, JSON merge patch and
//! strategic merge patch), as pure functions over `serde_json::Value`, so the API server has one
//! place to call. Nothing here reads or writes storage, or decides which patch types a resource
//! accepts (custom resources reject strategic merge patch: that is the caller's call).

mod builtin;
mod error;
mod json;
mod path;
mod schema;
mod strategic;

pub use builtin::{BuiltinSchema, BuiltinSchemaError};
pub use error::PatchError;
pub use json::{json_merge_patch, json_patch};
pub use schema::{MergeStrategy, NoSchema, PatchSchema, PatchStrategy};
pub use strategic::strategic_merge_patch;

/// The patch format named by a `PATCH` request's `Content-Type`, so the API server can parse the
/// header once and dispatch on a typed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// RFC 6902 JSON patch: `application/json-patch+json`.
    JsonPatch,
    /// RFC 7386 JSON merge patch: `application/merge-patch+json`.
    MergePatch,
    /// Kubernetes strategic merge patch: `application/strategic-merge-patch+json`.
    StrategicMergePatch,
    /// Server-side apply: `application/apply-patch+yaml`.
    ApplyPatch,
}

impl PatchType {
    /// Every patch type, in the order kube-apiserver lists them in a 415 response.
    pub const ALL: [PatchType; 4] = [
        PatchType::JsonPatch,
        PatchType::MergePatch,
        PatchType::StrategicMergePatch,
        PatchType::ApplyPatch,
    ];

    /// Parses a `Content-Type` header value; media-type parameters (`; charset=utf-8`) and case
    /// are ignored. `None` means the request should be answered with 415 Unsupported Media Type.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        PatchType::ALL
            .into_iter()
            .find(|patch_type| patch_type.content_type().eq_ignore_ascii_case(media_type))
    }

    /// The media type that selects this patch type, for `Accept-Patch` headers and error messages.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::JsonPatch => "application/json-patch+json",
            PatchType::MergePatch => "application/merge-patch+json",
            PatchType::StrategicMergePatch => "application/strategic-merge-patch+json",
            PatchType::ApplyPatch => "application/apply-patch+yaml",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PatchType;

    #[test]
    fn content_types_map_to_patch_types() {
        let cases = [
            ("application/json-patch+json", Some(PatchType::JsonPatch)),
            ("application/merge-patch+json", Some(PatchType::MergePatch)),
            (
                "application/strategic-merge-patch+json",
                Some(PatchType::StrategicMergePatch),
            ),
            ("application/apply-patch+yaml", Some(PatchType::ApplyPatch)),
            (
                "application/merge-patch+json; charset=utf-8",
                Some(PatchType::MergePatch),
            ),
            (
                "Application/Strategic-Merge-Patch+JSON",
                Some(PatchType::StrategicMergePatch),
            ),
            ("application/json", None),
            ("", None),
        ];
        for (content_type, expected) in cases {
            assert_eq!(
                PatchType::from_content_type(content_type),
                expected,
                "{content_type}"
            );
        }
    }

    #[test]
    fn content_type_round_trips() {
        for patch_type in PatchType::ALL {
            assert_eq!(
                PatchType::from_content_type(patch_type.content_type()),
                Some(patch_type)
            );
        }
    }
}
