//! Which failed etcd requests are tried again, and when: a member that died
//! (connection refused or reset) or an election in progress (`leader changed`,
//! `no leader`, a request lost with the old leader) says nothing about the request itself, so it goes to the next
//! endpoint after a short pause, as etcd's clientv3 retry interceptor does.
//! Every write the store sends is a compare-and-swap transaction, so a retry
//! of one that had in fact been applied fails its comparison rather than
//! applying twice. Pure decisions; the calling loop lives in `etcd.rs`.

use std::time::Duration;

/// gRPC's `UNAVAILABLE` status code (tonic is not a direct dependency).
pub(super) const GRPC_UNAVAILABLE: i32 = 14;

/// Messages etcd answers with while its members elect a new leader (the
/// last when a proposal was lost with the leader that died).
const ELECTION_MESSAGES: [&str; 3] = [
    "etcdserver: leader changed",
    "etcdserver: no leader",
    "etcdserver: request timed out, possibly due to previous leader failure",
];

/// True when a request that failed with this gRPC status should be sent again:
/// the transport failed (`UNAVAILABLE` not from etcd itself) or the cluster
/// was between leaders.
pub(super) fn retryable_status(code: i32, message: &str) -> bool {
    if code != GRPC_UNAVAILABLE {
        return false;
    }
    !message.starts_with("etcdserver:") || ELECTION_MESSAGES.iter().any(|m| message.contains(m))
}

/// The pause before retry number `attempt` (0-based): 100 ms doubling, at most 1 s.
pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(4)).min(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transport_failures_and_elections_are_retried() {
        let cases = [
            (
                GRPC_UNAVAILABLE,
                "tcp connect error: Connection refused",
                true,
            ),
            (GRPC_UNAVAILABLE, "etcdserver: leader changed", true),
            (GRPC_UNAVAILABLE, "etcdserver: no leader", true),
            (GRPC_UNAVAILABLE, "etcdserver: request timed out", false),
            (
                GRPC_UNAVAILABLE,
                "etcdserver: request timed out, possibly due to previous leader failure",
                true,
            ),
            (
                3,
                "etcdserver: mvcc: required revision has been compacted",
                false,
            ),
            (9, "etcdserver: requested lease not found", false),
        ];
        for (code, message, want) in cases {
            assert_eq!(retryable_status(code, message), want, "{code} {message}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_second() {
        let ms: Vec<u128> = (0..6).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
    }
}
