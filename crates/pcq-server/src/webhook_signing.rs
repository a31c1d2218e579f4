//! The key and certificate webhook events are signed with.
//!
//! Receivers verify `Authorization: Signature <base64>` (RSA-SHA256 over the exact body bytes)
//! with the certificate served at `X-MS-Certificate-Url`, as with Partner Center. The RSA key is
//! created on first use (generation takes a moment) and kept in the data directory
//! (`webhook-signing.key`, mode 0600) with its self-signed certificate (`webhook-signing.cer`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::{Decode, Encode};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

/// File name of the signing key in the data directory.
pub const KEY_FILE: &str = "webhook-signing.key";
/// File name of the certificate in the data directory.
pub const CERTIFICATE_FILE: &str = "webhook-signing.cer";
/// The signature algorithm, as `X-MS-Signature-Algorithm` names it.
pub const ALGORITHM: &str = "rsa-sha256";

/// Signs webhook bodies.
pub struct WebhookSigner {
    key: RsaKeyPair,
    certificate: Vec<u8>,
    random: SystemRandom,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSigner").finish_non_exhaustive()
    }
}

/// A new 2048-bit RSA key as PKCS#8 PEM.
pub fn generate_key_pem() -> anyhow::Result<String> {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .context("generating the webhook signing key")?;
    Ok(key
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the webhook signing key")?
        .to_string())
}

fn self_signed_certificate(key: &rsa::RsaPrivateKey) -> anyhow::Result<Vec<u8>> {
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let spki_der = key.to_public_key().to_public_key_der()?;
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes())?;
    let subject = Name::from_str("CN=pcq webhook signing,O=pcq")?;
    let validity = Validity::from_now(Duration::from_secs(10 * 365 * 86_400))?;
    let serial = SerialNumber::from(u32::from_be_bytes(*b"pcq1"));
    let builder = CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &signer)?;
    let certificate = builder.build::<rsa::pkcs1v15::Signature>()?;
    Ok(certificate.to_der()?)
}

impl WebhookSigner {
    /// A signer from a PKCS#8 PEM key, with a fresh self-signed certificate.
    pub fn from_key_pem(pem: &str) -> anyhow::Result<Self> {
        let key =
            rsa::RsaPrivateKey::from_pkcs8_pem(pem).context("reading the webhook signing key")?;
        let certificate = self_signed_certificate(&key)?;
        Self::new(&key, certificate)
    }

    fn new(key: &rsa::RsaPrivateKey, certificate: Vec<u8>) -> anyhow::Result<Self> {
        let der = key.to_pkcs8_der()?;
        let key = RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| anyhow::anyhow!("the webhook signing key is not usable: {e}"))?;
        Ok(WebhookSigner {
            key,
            certificate,
            random: SystemRandom::new(),
        })
    }

    /// A key for this process only (nothing is written).
    pub fn ephemeral() -> anyhow::Result<Self> {
        Self::from_key_pem(&generate_key_pem()?)
    }

    /// Loads the key and certificate from `dir`, creating them on first use. Blocking.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        crate::auth::dev_issuer::ensure_private_dir(dir)?;
        let key_path = dir.join(KEY_FILE);
        if !key_path.exists() {
            crate::auth::dev_issuer::write_private_file_once(
                &key_path,
                generate_key_pem()?.as_bytes(),
            )?;
        }
        let pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| {
            anyhow::anyhow!(
                "{} is not an RSA PKCS#8 key ({e}); move it away to create a new one",
                key_path.display()
            )
        })?;
        let cert_path = dir.join(CERTIFICATE_FILE);
        let certificate = match std::fs::read(&cert_path) {
            Ok(der) if certificate_matches(&der, &key) => der,
            _ => {
                let der = self_signed_certificate(&key)?;
                std::fs::write(&cert_path, &der)
                    .with_context(|| format!("writing {}", cert_path.display()))?;
                der
            }
        };
        Self::new(&key, certificate)
    }

    /// RSA-SHA256 (PKCS#1 v1.5) signature of `body`.
    pub fn sign(&self, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.random, body, &mut signature)
            .map_err(|_| anyhow::anyhow!("signing the webhook body failed"))?;
        Ok(signature)
    }

    /// The certificate (DER) receivers verify signatures with.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }
}

fn certificate_matches(der: &[u8], key: &rsa::RsaPrivateKey) -> bool {
    let Ok(certificate) = x509_cert::Certificate::from_der(der) else {
        return false;
    };
    let Ok(ours) = key.to_public_key().to_public_key_der() else {
        return false;
    };
    certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .is_ok_and(|theirs| theirs == ours.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;

    #[test]
    fn signatures_verify_with_the_certificate_and_files_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), generate_key_pem().unwrap()).unwrap();
        let signer = WebhookSigner::load_or_create(dir.path()).unwrap();
        let again = WebhookSigner::load_or_create(dir.path()).unwrap();
        assert_eq!(signer.certificate_der(), again.certificate_der());

        let body = br#"{"EventName":"test-created"}"#;
        let signature = signer.sign(body).unwrap();
        let certificate = x509_cert::Certificate::from_der(signer.certificate_der()).unwrap();
        let spki = certificate
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        let public = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
        let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public);
        let sig = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
        verifier.verify(body, &sig).unwrap();
        assert!(verifier.verify(b"tampered", &sig).is_err());
    }
}
