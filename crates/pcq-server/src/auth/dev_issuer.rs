//! The built-in development issuer: an Ed25519 key in the data directory that `pcq token` uses
//! to mint tokens for any partner, user or role, and that `pcq serve` trusts.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `iss` of development tokens.
pub const DEV_ISSUER: &str = "urn:pcq:dev-issuer";
/// The application id development tokens carry.
pub const DEV_APP_ID: &str = "7c5a1f2e-5f2b-4d59-9b0e-70c9a1e1d0c3";
/// File name of the signing key inside the data directory.
pub const KEY_FILE: &str = "dev-issuer.key";

/// What a development token should say.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    /// Partner tenant (`tid`).
    pub tenant: Uuid,
    /// User principal name for an App+User token; `None` mints an App-only token.
    pub user: Option<String>,
    /// Application roles (`roles`), e.g. `Pcq.Admin`.
    pub roles: Vec<String>,
    /// Directory role template ids (`wids`).
    pub wids: Vec<String>,
    /// Audience (`aud`).
    pub audience: String,
    /// Lifetime in seconds from now; negative mints an expired token.
    pub ttl_seconds: i64,
}

/// The development issuer's key pair.
pub struct DevIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    public_key: [u8; 32],
}

impl DevIssuer {
    /// Loads the key from `dir`, creating the directory (mode 0700) and the key (mode 0600)
    /// on first use. Safe when several processes start at once.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        ensure_private_dir(dir)?;
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            create_key_file(&path)?;
        }
        let pem = fs::read_to_string(&path)
            .with_context(|| format!("reading the development signing key {}", path.display()))?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
            anyhow::anyhow!(
                "{} is not an Ed25519 PKCS#8 key ({e}); move it away to create a new one",
                path.display()
            )
        })?;
        Self::from_signing_key(&key)
    }

    /// The issuer of a PKCS#8 PEM key (as [`DevIssuer::generate_pem`] makes); `origin` names
    /// where the key came from, for the error message.
    pub fn from_pem(pem: &str, origin: &str) -> anyhow::Result<Self> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| {
            anyhow::anyhow!(
                "the development signing key in {origin} is not an Ed25519 PKCS#8 key ({e})"
            )
        })?;
        Self::from_signing_key(&key)
    }

    /// A new key as PKCS#8 PEM.
    pub fn generate_pem() -> anyhow::Result<String> {
        let key = SigningKey::from_bytes(&random_bytes()?);
        Ok(key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("encoding the signing key: {e}"))?
            .to_string())
    }

    /// A key for this process only (nothing is written).
    pub fn ephemeral() -> anyhow::Result<Self> {
        Self::from_signing_key(&SigningKey::from_bytes(&random_bytes()?))
    }

    fn from_signing_key(key: &SigningKey) -> anyhow::Result<Self> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("encoding the signing key: {e}"))?;
        let public_key = key.verifying_key().to_bytes();
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public_key)[..12]);
        Ok(DevIssuer {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(&public_key),
            kid,
            public_key,
        })
    }

    /// The key id (`kid`) tokens are signed under.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (for a JWKS document).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.public_key),
        })
    }

    /// Mints a signed token. Times use the system clock, as token validation does.
    pub fn mint(&self, spec: &TokenSpec) -> anyhow::Result<String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = json!({
            "aud": spec.audience,
            "iss": DEV_ISSUER,
            "tid": spec.tenant.to_string(),
            "iat": now,
            "nbf": now.min(now + spec.ttl_seconds),
            "exp": now + spec.ttl_seconds,
            "appid": DEV_APP_ID,
            "azp": DEV_APP_ID,
            "ver": "1.0",
        });
        let object = claims.as_object_mut().expect("claims are an object");
        match &spec.user {
            Some(upn) => {
                let oid = Uuid::new_v5(&spec.tenant, upn.to_ascii_lowercase().as_bytes());
                object.insert("scp".into(), json!("user_impersonation"));
                object.insert("upn".into(), json!(upn));
                object.insert("unique_name".into(), json!(upn));
                object.insert("name".into(), json!(upn));
                object.insert("oid".into(), json!(oid.to_string()));
                object.insert("idtyp".into(), json!("user"));
            }
            None => {
                let oid = Uuid::new_v5(&spec.tenant, DEV_APP_ID.as_bytes());
                object.insert("idtyp".into(), json!("app"));
                object.insert("oid".into(), json!(oid.to_string()));
            }
        }
        if !spec.roles.is_empty() {
            object.insert("roles".into(), json!(spec.roles));
        }
        if !spec.wids.is_empty() {
            object.insert("wids".into(), json!(spec.wids));
        }
        self.sign(&claims)
    }

    /// Signs arbitrary claims with this issuer's key (for tests of malformed tokens).
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| anyhow::anyhow!("signing the token: {e}"))
    }
}

impl DevIssuer {
    /// The verification key with id `kid`, if it is this issuer's.
    pub fn verification_key(&self, kid: &str) -> Option<(&DecodingKey, Algorithm)> {
        (kid == self.kid).then_some((&self.decoding, Algorithm::EdDSA))
    }
}

fn random_bytes() -> anyhow::Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(bytes)
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))
}

fn create_key_file(path: &Path) -> anyhow::Result<()> {
    write_private_file_once(path, DevIssuer::generate_pem()?.as_bytes())
}

/// Creates `path` with `contents` and mode 0600 unless it exists. The file is written next to
/// `path` and linked into place, so that concurrent creators agree on one file and nobody ever
/// reads a half-written one.
pub fn write_private_file_once(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp: PathBuf = path.with_extension(format!("tmp-{}", Uuid::new_v4().simple()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::auth::{Authenticator, CredentialKind};

    const AUD: &str = "https://api.partnercenter.microsoft.com";

    fn spec(user: Option<&str>) -> TokenSpec {
        TokenSpec {
            tenant: Uuid::new_v4(),
            user: user.map(str::to_owned),
            roles: vec![],
            wids: vec![],
            audience: AUD.to_owned(),
            ttl_seconds: 600,
        }
    }

    #[test]
    fn key_is_created_once_with_private_mode_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let a = DevIssuer::load_or_create(&data).unwrap();
        let b = DevIssuer::load_or_create(&data).unwrap();
        assert_eq!(a.kid(), b.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(data.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = fs::metadata(&data).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let leftovers: Vec<_> = fs::read_dir(&data).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files remain");
    }

    #[tokio::test]
    async fn minted_tokens_verify_and_classify() {
        let issuer = DevIssuer::ephemeral().unwrap();
        let user = spec(Some("ana@contoso.onmicrosoft.com"));
        let token = issuer.mint(&user).unwrap();
        let other = Arc::new(DevIssuer::ephemeral().unwrap());
        let auth = Authenticator::new(AUD, Some(other), vec![]);
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {token}")))
                .await
                .unwrap_err()
                .status,
            401
        );

        let kid = issuer.kid().to_owned();
        let auth = Authenticator::new(AUD, Some(Arc::new(issuer)), vec![]);
        let principal = auth
            .authenticate(Some(&format!("Bearer {token}")))
            .await
            .unwrap();
        assert_eq!(principal.tenant_id, user.tenant);
        assert_eq!(principal.kind, CredentialKind::AppUser);
        assert_eq!(
            principal.upn.as_deref(),
            Some("ana@contoso.onmicrosoft.com")
        );
        assert!(!kid.is_empty());
    }

    #[test]
    fn corrupt_key_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        let err = DevIssuer::load_or_create(dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not an Ed25519"), "{err}");
    }
}
