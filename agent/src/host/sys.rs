//! The two host facts that need system calls rather than files: the size of
//! a filesystem (`statvfs`) and the interface addresses (`getifaddrs`).
//! Thin, read-only wrappers; all decisions are made by the pure callers.

use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::InterfaceAddress;

/// Total bytes of the filesystem holding `path` (which must exist).
pub(super) fn filesystem_size(path: &Path) -> io::Result<u64> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} contains a NUL byte", path.display()),
        )
    })?;
    // SAFETY: statvfs is plain data, for which all-zero bytes are valid.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and outlives the call; `stats` is a
    // valid, writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The field types differ between targets (u32 on some 32-bit ones).
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(stats.f_blocks).saturating_mul(u64::from(stats.f_frsize)))
}

/// Every address of every interface that is up, in the kernel's order.
pub(super) fn interface_addresses() -> io::Result<Vec<InterfaceAddress>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut addresses = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a non-null node of the list getifaddrs returned,
        // alive until freeifaddrs.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        if entry.ifa_addr.is_null()
            || entry.ifa_name.is_null()
            || entry.ifa_flags & libc::IFF_UP as libc::c_uint == 0
        {
            continue;
        }
        // SAFETY: `ifa_addr` is non-null and points at a sockaddr whose family
        // says which larger struct it really is; `ifa_name` is NUL-terminated.
        let address = unsafe {
            match i32::from((*entry.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let v4 = &*entry.ifa_addr.cast::<libc::sockaddr_in>();
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let v6 = &*entry.ifa_addr.cast::<libc::sockaddr_in6>();
                    IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        // SAFETY: see above.
        let interface = unsafe { CStr::from_ptr(entry.ifa_name) }
            .to_string_lossy()
            .into_owned();
        addresses.push(InterfaceAddress { interface, address });
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_size_of_the_temp_dir_is_positive() {
        assert!(filesystem_size(&std::env::temp_dir()).unwrap() > 0);
    }

    #[test]
    fn filesystem_size_of_a_missing_path_is_an_error() {
        let missing = std::env::temp_dir().join("berth-host-test-does-not-exist/x");
        assert!(filesystem_size(&missing).is_err());
    }

    #[test]
    fn interface_addresses_are_named() {
        // Sandboxes may have no interface up at all, so only the shape is checked.
        for address in interface_addresses().unwrap() {
            assert!(!address.interface.is_empty(), "{address:?}");
        }
    }
}
