//! Why a patch could not be applied. Every variant names where in the object the problem is and,
//! where upstream has one, keeps the wording of kube-apiserver's message so clients and people who
//! search for it recognise it. Mapping to a Kubernetes `Status` happens in the API server.

/// A patch that cannot be applied to the object; kube-apiserver answers these with
/// 422 Unprocessable Entity (or 400 for a body that is not a patch at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The object or the patch is not a JSON object where one is required.
    #[error("{what} must be a JSON object, but it is a {found}")]
    NotAnObject {
        /// Which document: "the object", "the strategic merge patch", …
        what: &'static str,
        /// The JSON type found instead.
        found: &'static str,
    },

    /// A `$patch` directive with a value this position does not support.
    #[error("unknown patch type: {directive} in map at {path}: `$patch` accepts {allowed}")]
    UnknownDirective {
        /// Where the directive was found.
        path: String,
        /// The value of `$patch`, as JSON.
        directive: String,
        /// The values that are accepted at this position.
        allowed: &'static str,
    },

    /// `$patch: merge` inside a list, which kube-apiserver does not support either.
    #[error(
        "merging lists cannot yet be specified in the patch (`$patch: merge` in the list at {path}); \
         lists with a merge strategy already merge, remove the element"
    )]
    MergeDirectiveInList {
        /// Where the list is.
        path: String,
    },

    /// An element of a list that merges by key lacks the key.
    #[error(
        "map: {element} does not contain declared merge key: {key} (in the list at {path}); \
         every element of this list must set `{key}`"
    )]
    MissingMergeKey {
        /// Where the list is.
        path: String,
        /// The merge key, e.g. `name` for containers.
        key: String,
        /// The offending element, as compact JSON.
        element: String,
    },

    /// A list of objects whose schema says "merge" but names no merge key.
    #[error("cannot merge lists without merge key for {path}: the schema gives this list of objects no merge key")]
    NoMergeKey {
        /// Where the list is.
        path: String,
    },

    /// A list that merges by key holds something other than objects.
    #[error("the list at {path} merges by the key `{key}`, so its elements must be objects, but one is a {found}")]
    ElementNotAnObject {
        /// Where the list is.
        path: String,
        /// The merge key.
        key: String,
        /// The JSON type found.
        found: &'static str,
    },

    /// A merging list that holds lists.
    #[error("lists of lists are not supported (at {path})")]
    ListOfLists {
        /// Where the list is.
        path: String,
    },

    /// A merging list whose elements (in the object and the patch together) are of different JSON types.
    #[error("list element types are not identical at {path}: found both {first} and {second}")]
    MixedElementTypes {
        /// Where the list is.
        path: String,
        /// The type of the first element.
        first: &'static str,
        /// The first type that differs from it.
        second: &'static str,
    },

    /// A directive or field whose value has the wrong JSON type.
    #[error("invalid type for {path}: got {actual:?}, expected {expected:?}")]
    InvalidType {
        /// Where the value is.
        path: String,
        /// The JSON type required.
        expected: &'static str,
        /// The JSON type found.
        actual: &'static str,
    },

    /// A malformed `$retainKeys` directive.
    #[error("invalid patch format of retainKeys at {path}: {reason}")]
    InvalidRetainKeys {
        /// Where the directive is.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A malformed `$setElementOrder/<field>` directive.
    #[error("invalid patch format of setElementOrder list at {path}: {reason}")]
    InvalidSetElementOrder {
        /// Where the directive is.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A malformed `$deleteFromPrimitiveList/<field>` directive.
    #[error("invalid patch format of primitive list at {path}: {reason}")]
    InvalidDeleteFromPrimitiveList {
        /// Where the directive is.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The elements of a patch list are not in the order its `$setElementOrder` list gives.
    #[error(
        "the order in patch list {patch} doesn't match $setElementOrder list {order} at {path}; \
         list the patch elements in the same order as in $setElementOrder"
    )]
    SetElementOrderMismatch {
        /// Where the list is.
        path: String,
        /// The patch list, as compact JSON.
        patch: String,
        /// The `$setElementOrder` list, as compact JSON.
        order: String,
    },

    /// A JSON patch body that is not a list of RFC 6902 operations.
    #[error("invalid JSON patch: {reason}")]
    InvalidJsonPatch {
        /// What is wrong with it, naming the operation where there is one.
        reason: String,
    },

    /// An RFC 6902 operation that could not be applied; the object is left unchanged.
    #[error("JSON patch operation {index} ({op} {path}) failed: {reason}")]
    JsonPatchFailed {
        /// Position of the operation in the patch, from 0.
        index: usize,
        /// The operation: add, remove, replace, move, copy or test.
        op: String,
        /// The operation's `path`.
        path: String,
        /// Why it failed.
        reason: String,
    },
}
