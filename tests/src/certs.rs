//! Certificates made at run time for the TLS tests: a CA that exists for one test, server
//! certificates it signs for 127.0.0.1 and localhost, the files the gateway reads them from, and a
//! rustls client configuration that trusts that CA only.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
    SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::TempDir;

/// A certificate authority that exists for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A server certificate as the gateway reads it (chain and key as PEM) and as a client sees it.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
    /// The leaf certificate, DER.
    pub der: Vec<u8>,
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "gateway test CA");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        let cert = p.self_signed(&key).expect("a CA certificate");
        TestCa { cert, key }
    }

    /// A certificate for 127.0.0.1 and localhost named `name`, with serial number `serial`.
    pub fn issue(&self, name: &str, serial: u64) -> Issued {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.serial_number = Some(SerialNumber::from(serial));
        p.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into().expect("a DNS name")),
        ];
        let key = KeyPair::generate().expect("a server key");
        let cert = p
            .signed_by(&key, &self.cert, &self.key)
            .expect("the CA signs");
        Issued {
            chain_pem: format!("{}{}", cert.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let pem = self.cert.pem();
        for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
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
}

/// The gateway's certificate files in a temporary directory.
pub struct CertFiles {
    dir: TempDir,
}

impl CertFiles {
    pub fn new(first: &Issued) -> CertFiles {
        let files = CertFiles {
            dir: TempDir::new("tls-certs"),
        };
        files.write(first);
        files
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("chain.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// Replaces both files, key first, as an operator copying renewed files would.
    pub fn write(&self, issued: &Issued) {
        std::fs::write(self.key(), &issued.key_pem).expect("write the key");
        std::fs::write(self.cert(), &issued.chain_pem).expect("write the chain");
    }
}
