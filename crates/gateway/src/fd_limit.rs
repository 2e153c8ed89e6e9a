//! Raises the process's open-file limit to what the system allows.
//!
//! Every connection holds a file descriptor, and the usual soft limit (1024) is far below what
//! the listeners' connection caps allow: the gateway would refuse clients with EMFILE long before
//! any cap applied. The hard limit is the administrator's choice; the soft limit is ours to raise.

use std::sync::Once;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, once per process, and logs the outcome.
pub(crate) fn raise_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| match raise() {
        Ok((from, to)) if from == to => tracing::info!(limit = to, "open-file limit"),
        Ok((from, to)) => tracing::info!(from, to, "raised the open-file limit"),
        Err(err) => tracing::warn!(%err, "cannot raise the open-file limit; `ulimit -n` bounds the connections"),
    });
}

/// `(soft limit before, soft limit now)`.
#[cfg(unix)]
fn raise() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit; setrlimit only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // `rlim_t` is u64 on Linux but not on every Unix.
    #[allow(clippy::unnecessary_cast)]
    Ok((before as u64, lim.rlim_cur as u64))
}

#[cfg(not(unix))]
fn raise() -> std::io::Result<(u64, u64)> {
    Err(std::io::Error::other("not supported on this system"))
}

#[cfg(all(test, unix))]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let (_, now) = super::raise().expect("raising to the hard limit is always allowed");
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in `raise`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        #[allow(clippy::unnecessary_cast)]
        let cur = lim.rlim_cur as u64;
        assert_eq!((lim.rlim_cur, cur), (lim.rlim_max, now));
    }
}
