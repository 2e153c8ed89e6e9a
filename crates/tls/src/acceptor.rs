//! One TLS listener's side: accepting on a plain and a TLS listener at once, and the timed
//! handshake with its failure count and rate-limited log.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netutil::{Listener, RateLimit};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::CertStore;

/// Failed handshakes are logged at most this often per listener.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// A connection taken by [`accept_either`].
#[derive(Debug)]
pub struct Accepted {
    pub socket: TcpStream,
    pub peer: SocketAddr,
    /// It arrived on the TLS listener: hand it to [`Acceptor::handshake`] before serving it.
    pub tls: bool,
}

/// Accepts the next connection on whichever listener has one. A listener that is `None` (that
/// protocol's plain or TLS listener is off) never yields. Cancel-safe, like
/// [`tokio::net::TcpListener::accept`]; a listener a reload moved is taken up here (see
/// [`netutil::Listener`]).
pub async fn accept_either(
    plain: Option<&mut Listener>,
    tls: Option<&mut Listener>,
) -> io::Result<Accepted> {
    tokio::select! {
        a = accept_on(plain, false) => a,
        a = accept_on(tls, true) => a,
    }
}

async fn accept_on(listener: Option<&mut Listener>, tls: bool) -> io::Result<Accepted> {
    match listener {
        Some(l) => {
            let (socket, peer) = l.accept().await?;
            Ok(Accepted { socket, peer, tls })
        }
        None => std::future::pending().await,
    }
}

/// The handshakes of one TLS listener. Cloning shares the failure count.
#[derive(Clone)]
pub struct Acceptor {
    tls: tokio_rustls::TlsAcceptor,
    failures: Arc<Failures>,
}

struct Failures {
    /// The listener's name in log lines, such as "RTMPS".
    listener: &'static str,
    count: AtomicU64,
    log: Mutex<RateLimit>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("listener", &self.failures.listener)
            .field("failed_handshakes", &self.failed_handshakes())
            .finish()
    }
}

impl Acceptor {
    /// Handshakes for the listener named `listener` in logs, presenting the certificate of
    /// `certs` (whatever it holds at each handshake) and offering the ALPN protocols `alpn`
    /// (`["http/1.1"]` for HTTPS, none for RTMPS and RTSPS, which have no registered id).
    pub fn new(listener: &'static str, certs: &CertStore, alpn: &[&str]) -> Acceptor {
        Acceptor {
            tls: tokio_rustls::TlsAcceptor::from(certs.server_config(alpn)),
            failures: Arc::new(Failures {
                listener,
                count: AtomicU64::new(0),
                log: Mutex::new(RateLimit::new(FAILURE_LOG_INTERVAL)),
            }),
        }
    }

    /// The listener's name, as given to [`Acceptor::new`].
    pub fn listener(&self) -> &'static str {
        self.failures.listener
    }

    /// Runs the server side of the TLS handshake on `io` (an accepted socket whose options are
    /// already set) within `limit`. `None` if it failed or took too long: the failure is counted
    /// and logged with the peer at most once a second (a port scanner or a client speaking the
    /// plain protocol to the TLS port fails here), and the socket is closed.
    pub async fn handshake<IO>(
        &self,
        io: IO,
        peer: SocketAddr,
        limit: Duration,
    ) -> Option<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let why = match tokio::time::timeout(limit, self.tls.accept(io)).await {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("not completed within {}", netutil::display::Secs(limit)),
        };
        self.failed(peer, &why);
        None
    }

    /// Handshakes that failed or timed out on this listener so far.
    pub fn failed_handshakes(&self) -> u64 {
        self.failures.count.load(Ordering::Relaxed)
    }

    fn failed(&self, peer: SocketAddr, why: &str) {
        let f = &self.failures;
        f.count.fetch_add(1, Ordering::Relaxed);
        let due = f
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(Instant::now());
        if let Some(quiet) = due {
            let listener = f.listener;
            tracing::info!(%peer, %listener, error = %why, failures_not_logged = quiet, "TLS handshake failed; connection closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::tests::{self_signed, write_pair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.expect("valid PEM")).expect("a usable root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// A listener that answers every TLS connection's first byte with "ok".
    async fn echo_server(acceptor: Acceptor) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (mut l, _) = Listener::new("TEST", l);
        tokio::spawn(async move {
            loop {
                let a = accept_either(None, Some(&mut l)).await.expect("accept");
                assert!(a.tls);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let limit = Duration::from_secs(2);
                    if let Some(mut s) = acceptor.handshake(a.socket, a.peer, limit).await {
                        let mut b = [0u8; 1];
                        if s.read_exact(&mut b).await.is_ok() {
                            let _ = s.write_all(b"ok").await;
                            let _ = s.flush().await;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_client_trusting_the_certificate_completes_and_a_plain_one_is_counted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = self_signed("localhost");
        let (cert, key) = write_pair(dir.path(), &pair);
        let store = CertStore::load(&cert, &key).expect("loads");
        let acceptor = Acceptor::new("TEST", &store, &["http/1.1"]);
        let addr = echo_server(acceptor.clone()).await;

        let connector = tokio_rustls::TlsConnector::from(client_config(&pair.0));
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("a name");
        let mut s = connector.connect(name, tcp).await.expect("handshake");
        s.write_all(b"x").await.expect("write");
        let mut got = [0u8; 2];
        s.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ok");
        assert_eq!(acceptor.failed_handshakes(), 0);

        // A client speaking plain RTMP (C0 = 3) to the TLS port.
        let mut plain = TcpStream::connect(addr).await.expect("connect");
        plain.write_all(&[3u8; 1537]).await.expect("write");
        let mut rest = Vec::new();
        let _ = plain.read_to_end(&mut rest).await;
        let counted = async {
            while acceptor.failed_handshakes() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), counted)
            .await
            .expect("the failed handshake is counted");
    }
}
