//! This process's resources from `/proc/self`: the in-process gateway's memory and open file
//! descriptors, which a test compares with a baseline after hostile clients have left.

/// Resident set size in KiB (`VmRSS` in `/proc/self/status`); 0 if it cannot be read.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of this process (entries of `/proc/self/fd`).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Asks glibc to give freed heap memory back to the system, as the gateway's `memory.rs` does
/// once load falls, so that RSS measures what is still held rather than the allocator's cache.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; glibc locks each arena while it trims it.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Raises this process's soft limit on open files to its hard limit and returns the soft limit
/// now in force (the gateway binary's operators do the same with `ulimit -n`).
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_descriptors() {
        assert!(rss_kib() > 0);
        let before = open_fds();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(open_fds(), before + 1);
        drop(f);
        assert!(raise_fd_limit() >= 3);
    }
}
