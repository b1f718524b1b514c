//! What both hops of a streaming request (kubectl → API server → node
//! agent → container runtime) agree on: the client headers that negotiate
//! the HTTP upgrade of `exec`, `attach` and `port-forward`, for SPDY and
//! WebSocket alike. Each hop passes exactly these on, and nothing else
//! (least of all `Authorization`).

/// The request headers forwarded verbatim with an upgrade (lower case).
pub const UPGRADE_HEADERS: [&str; 8] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
    "origin",
];
