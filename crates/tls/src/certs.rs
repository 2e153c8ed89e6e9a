//! The certificate and key files: loaded into a rustls server configuration whose certificate
//! comes from a resolver, so a reload reaches every new handshake of every listener at once.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

/// The largest certificate or key file read. A chain of a few certificates is some kilobytes;
/// anything near this is not a PEM file meant for us.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// Why a certificate or key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_PEM_BYTES} bytes; expected a PEM file")]
    TooLarge { path: String },
    #[error("{path}: {problem}")]
    Pem { path: String, problem: String },
    #[error("{path}: the private key cannot be used: {problem}")]
    Key { path: String, problem: String },
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    Mismatch { cert: String, key: String },
}

/// What [`CertStore::reload_if_changed`] did.
#[derive(Debug)]
pub enum Reload {
    /// Neither file's modification time changed.
    Unchanged,
    /// The files changed and parsed: new handshakes get the new certificate.
    Reloaded,
    /// The files changed but cannot be used; the certificate in use is kept.
    Failed(TlsError),
}

/// The certificate every handshake is given; swapped whole on reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl Current {
    fn get(&self) -> Arc<CertifiedKey> {
        // A writer only replaces the Arc, so the value is whole even after a panic elsewhere.
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn set(&self, key: CertifiedKey) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// Modification times of the certificate and key files (`None`: could not be read).
type Stamps = (Option<SystemTime>, Option<SystemTime>);

/// The operator's certificate chain and private key, shared by every TLS listener.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    /// The files' modification times when they were last looked at.
    seen: Mutex<Stamps>,
}

impl CertStore {
    /// Loads `cert_path` (PEM certificate chain, leaf first) and `key_path` (PEM private key:
    /// PKCS#8, PKCS#1 RSA or SEC1 EC), checking that the key belongs to the certificate.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<CertStore>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let seen = stamps(cert_path, key_path);
        let key = load_pair(cert_path, key_path, &provider)?;
        Ok(Arc::new(CertStore {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: Arc::new(Current(RwLock::new(Arc::new(key)))),
            seen: Mutex::new(seen),
        }))
    }

    /// The certificate (chain and key) new handshakes get now.
    pub fn certificate(&self) -> Arc<CertifiedKey> {
        self.current.get()
    }

    /// A server configuration (rustls' safe default protocol versions and cipher suites, no
    /// client certificates) that offers `alpn` and always presents the current certificate.
    pub fn server_config(&self, alpn: &[&str]) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports rustls' default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&self.current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(config)
    }

    /// Reloads the files if either modification time changed since they were last looked at.
    /// Open connections keep the session they have; only new handshakes see the new
    /// certificate. A file that fails to parse (or a key that does not match, as while an
    /// operator has copied one file but not yet the other) leaves the old certificate in use;
    /// the next change of either file is tried again.
    pub fn reload_if_changed(&self) -> Reload {
        let now = stamps(&self.cert_path, &self.key_path);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Reload::Unchanged;
            }
            *seen = now;
        }
        match load_pair(&self.cert_path, &self.key_path, &self.provider) {
            Ok(key) => {
                self.current.set(key);
                Reload::Reloaded
            }
            Err(e) => Reload::Failed(e),
        }
    }

    /// Checks the files every `every` until `shutdown`, reloading them when they change. The
    /// check is two `stat` calls (and, after a change, reading two small files), done inline on
    /// the runtime: far below a millisecond, at most once a second.
    pub async fn watch(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (cert, key) = (self.cert_path.display(), self.key_path.display());
            match self.reload_if_changed() {
                Reload::Unchanged => {}
                Reload::Reloaded => {
                    tracing::info!(%cert, %key, "TLS certificate reloaded; new handshakes use it")
                }
                Reload::Failed(e) => {
                    tracing::warn!(%cert, %key, error = %e, "TLS certificate files changed but cannot be used; keeping the certificate in use")
                }
            }
        }
    }
}

fn stamps(cert: &Path, key: &Path) -> Stamps {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (mtime(cert), mtime(key))
}

/// Reads a whole file of at most [`MAX_PEM_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    let shown = || path.display().to_string();
    let read_err = |source| TlsError::Read {
        path: shown(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge { path: shown() });
    }
    Ok(bytes)
}

/// Loads and checks a certificate chain and its private key.
fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let (cert_shown, key_shown) = (
        cert_path.display().to_string(),
        key_path.display().to_string(),
    );
    let cert_pem = read_bounded(cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_shown.clone(),
            problem: format!("not a PEM certificate chain: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert_shown,
            problem: "no CERTIFICATE section found".into(),
        });
    }
    let key_pem = read_bounded(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        path: key_shown.clone(),
        problem: format!("no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section: {e}"),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            cert: cert_shown,
            key: key_shown,
        },
        other => TlsError::Key {
            path: key_shown,
            problem: other.to_string(),
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate for `name` and its key, as PEM.
    pub(crate) fn self_signed(name: &str) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec![name.to_owned()])
            .expect("rcgen makes a certificate");
        (c.cert.pem(), c.key_pair.serialize_pem())
    }

    pub(crate) fn write_pair(dir: &Path, pair: &(String, String)) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &pair.0).expect("write the certificate");
        std::fs::write(&key, &pair.1).expect("write the key");
        (cert, key)
    }

    fn leaf(store: &CertStore) -> Vec<u8> {
        store.certificate().cert[0].to_vec()
    }

    #[test]
    fn a_certificate_and_its_key_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = write_pair(dir.path(), &self_signed("localhost"));
        let store = CertStore::load(&cert, &key).expect("loads");
        assert_eq!(store.certificate().cert.len(), 1);
        assert!(matches!(store.reload_if_changed(), Reload::Unchanged));
    }

    #[test]
    fn unusable_files_are_explained() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = self_signed("a");
        let b = self_signed("b");
        let (cert, key) = write_pair(dir.path(), &a);
        let check = |want: &str| {
            let err = CertStore::load(&cert, &key)
                .expect_err("must fail")
                .to_string();
            assert!(err.contains(want), "{err:?} should say {want:?}");
        };
        std::fs::write(&key, &b.1).unwrap();
        check("does not belong to the certificate");
        std::fs::write(&key, &a.0).unwrap();
        check("no PRIVATE KEY");
        std::fs::write(&cert, "hello").unwrap();
        check("no CERTIFICATE section");
        std::fs::remove_file(&cert).unwrap();
        check("cannot read");
        std::fs::write(&cert, vec![b'x'; MAX_PEM_BYTES as usize + 1]).unwrap();
        check("larger than");
    }

    /// Writes new contents and moves the files' modification times forward, as a copy made a
    /// second later would.
    fn replace(cert: &Path, key: &Path, pair: &(String, String), age: u64) {
        for (path, text) in [(cert, &pair.0), (key, &pair.1)] {
            std::fs::write(path, text).unwrap();
            let t = SystemTime::now() + Duration::from_secs(age);
            let f = std::fs::File::options().write(true).open(path).unwrap();
            f.set_modified(t).unwrap();
        }
    }

    #[test]
    fn a_changed_pair_is_reloaded_and_a_bad_one_keeps_the_old() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = write_pair(dir.path(), &self_signed("one"));
        let store = CertStore::load(&cert, &key).expect("loads");
        let first = leaf(&store);
        let two = self_signed("two");
        replace(&cert, &key, &two, 10);
        assert!(matches!(store.reload_if_changed(), Reload::Reloaded));
        let second = leaf(&store);
        assert_ne!(first, second);
        assert!(matches!(store.reload_if_changed(), Reload::Unchanged));
        // Half a copy: a new certificate whose key has not arrived yet.
        let three = self_signed("three");
        replace(&cert, &key, &(three.0.clone(), two.1.clone()), 20);
        assert!(matches!(
            store.reload_if_changed(),
            Reload::Failed(TlsError::Mismatch { .. })
        ));
        assert_eq!(leaf(&store), second, "the certificate in use is kept");
        replace(&cert, &key, &three, 30);
        assert!(matches!(store.reload_if_changed(), Reload::Reloaded));
        assert_ne!(leaf(&store), second);
    }
}
