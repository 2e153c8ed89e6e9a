//! RTMPS: the RTMP viewer's and the publisher's connection is plain TCP or TLS over it
//! (rustls, ring provider), read and written through one [`Conn`].
//!
//! A plain connection keeps the cheap path of [`crate::net`] (reads land in the per-thread
//! buffer). A TLS connection needs a buffer of its own, since the read awaits inside rustls:
//! [`READ_BUF_LEN`] bytes per viewer, so a paced TLS viewer reads as much per wake-up as a plain
//! one.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::net::{read_with, write_all, READ_BUF_LEN};
use crate::ViewError;

/// A connection to the server, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls {
        stream: Box<TlsStream<TcpStream>>,
        buf: Box<[u8]>,
    },
}

impl Conn {
    /// Connects to `authority` (`host:port`); over TLS when `tls` is given, with the host as
    /// the server name the certificate must match (unless the config accepts any).
    pub async fn connect(
        authority: &str,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<Conn, ViewError> {
        let sock = TcpStream::connect(authority).await?;
        sock.set_nodelay(true)?;
        let Some(config) = tls else {
            return Ok(Conn::Plain(sock));
        };
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| ViewError::Url(format!("{authority}: not a TLS server name: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
        let stream = connector
            .connect(name, sock)
            .await
            .map_err(|e| ViewError::Protocol(format!("TLS handshake with {authority}: {e}")))?;
        Ok(Conn::Tls {
            stream: Box::new(stream),
            buf: vec![0; READ_BUF_LEN].into_boxed_slice(),
        })
    }

    /// The TCP socket under the connection.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(sock) => sock,
            Conn::Tls { stream, .. } => stream.get_ref().0,
        }
    }

    /// Reads once and hands the bytes to `f`; returns the count, 0 at EOF. Cancel-safe.
    pub async fn read_with<F>(&mut self, mut f: F) -> Result<usize, ViewError>
    where
        F: FnMut(&[u8]) -> Result<(), ViewError>,
    {
        match self {
            Conn::Plain(sock) => read_with(sock, f).await,
            Conn::Tls { stream, buf } => {
                let n = stream.read(buf).await?;
                f(&buf[..n])?;
                Ok(n)
            }
        }
    }

    /// Writes all of `data` (and, over TLS, flushes the records).
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), ViewError> {
        if data.is_empty() {
            return Ok(());
        }
        match self {
            Conn::Plain(sock) => write_all(sock, data).await,
            Conn::Tls { stream, .. } => {
                stream.write_all(data).await?;
                stream.flush().await?;
                Ok(())
            }
        }
    }
}

/// The client configuration for `rtmps://` URLs: trusting the PEM certificates in `ca_file`,
/// or with `insecure` accepting any certificate (a load test against a server with a
/// self-signed one; signatures are still checked, the chain and name are not).
pub fn client_config(ca_file: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match (ca_file, insecure) {
        (_, true) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        (Some(path), false) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        (None, false) => return Err("rtmps:// needs --ca-file FILE or --insecure".into()),
    };
    Ok(Arc::new(config))
}

/// Accepts any certificate chain and name, but checks that the server holds the key of the
/// certificate it sent (the handshake signature), so the TLS work is the same as a real client's.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
