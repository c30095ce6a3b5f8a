//! Builds the application from [`Settings`] and binds its listener, so tests run the real server
//! on port 0 (`Application::build` then `run_until_stopped`).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpMessage, HttpServer};
use arc_swap::ArcSwap;

use crate::audit::{AuditError, JsonlAuditSink};
use crate::config::{Settings, StoreBackend, TlsSettings};
use crate::credential::{JwtMinter, KeyError, Minter, SigningKey};
use crate::domain::Audience;
use crate::exchange::{Active, DecideContext, ExchangeService, ExchangeSettings};
use crate::http::{self, AppState, RequestId};
use crate::policy::{LoadErrors, PolicySet};
use crate::reload::PolicyReloader;
use crate::store::{MemoryStore, RedisStore, Store, StoreError};
use crate::telemetry::Metrics;
use crate::verify::{BrokerKeys, KeySetupError, Verifier};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("trust policies in {dir} did not load:\n{errors}")]
    Policies { dir: String, errors: LoadErrors },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    SigningKey(#[from] KeyError),
    #[error("audit file: {0}")]
    Audit(#[from] AuditError),
    #[error("issuer keys: {0}")]
    Issuers(#[from] KeySetupError),
    #[error("broker audience `{0}` is not a valid audience (set credential.audience)")]
    Audience(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("credential lifecycle: {0}")]
    Lifecycle(String),
}

pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    base_url: String,
    service: Arc<ExchangeService>,
    reloader: Arc<PolicyReloader>,
    reload_interval: std::time::Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let policies =
            PolicySet::load(&settings.policies.dir).map_err(|errors| StartupError::Policies {
                dir: settings.policies.dir.display().to_string(),
                errors,
            })?;
        let listener =
            TcpListener::bind(&settings.server.listen).map_err(|source| StartupError::Bind {
                addr: settings.server.listen.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.server.listen.clone(),
            source,
        })?;
        let base_url = settings.public_url_for(local_addr);
        let service = Arc::new(build_service(&settings, policies, &base_url)?);
        let reloader = Arc::new(PolicyReloader::new(
            settings.policies.dir.clone(),
            service.clone(),
            settings.verify_settings(),
            settings.fetch_settings(),
        ));
        #[cfg(unix)]
        reloader.clone().listen_for_sighup();
        let server = serve(
            &settings,
            listener,
            service.clone(),
            reloader.clone(),
            &base_url,
        )?;
        tracing::info!(
            listen = %local_addr, public_url = %base_url,
            policies = service.active.load().policies.len(),
            store = settings.store.backend.name(),
            "ferry is listening"
        );
        Ok(Application {
            server,
            local_addr,
            base_url,
            service,
            reloader,
            reload_interval: settings.policies.reload_interval,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The broker's public URL: `iss` of its credentials and its default audience.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn service(&self) -> Arc<ExchangeService> {
        self.service.clone()
    }

    /// Reloads the policy directory (what a change or `SIGHUP` triggers).
    pub fn reloader(&self) -> Arc<PolicyReloader> {
        self.reloader.clone()
    }

    /// Fetches issuer keys in the background, watches the policy directory, then serves until
    /// the server stops.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let active = self.service.active.load_full();
        tokio::spawn(async move { active.verifier.warm_up().await });
        spawn_key_refresh(Arc::downgrade(&self.service));
        self.reloader.clone().spawn_polling(self.reload_interval);
        self.server.await
    }
}

/// How often the issuers' keys are checked for a scheduled refresh (each issuer is refreshed
/// only when due: see `keys.min_refresh`/`keys.max_refresh`).
const KEY_REFRESH_TICK: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps issuer keys fresh on schedule even when no token arrives, so `/readyz` and the next
/// request see current keys. Ends with the service.
fn spawn_key_refresh(service: std::sync::Weak<ExchangeService>) {
    tokio::spawn(async move {
        // The first tick one period from now: the warm-up covers the start.
        let start = tokio::time::Instant::now() + KEY_REFRESH_TICK;
        let mut tick = tokio::time::interval_at(start, KEY_REFRESH_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(service) = service.upgrade() else {
                return;
            };
            let active = service.active.load_full();
            drop(service);
            active.verifier.refresh_due().await;
        }
    });
}

fn build_service(
    settings: &Settings,
    policies: PolicySet,
    base_url: &str,
) -> Result<ExchangeService, StartupError> {
    let key =
        SigningKey::load_or_generate(&settings.signing_key_file(), settings.credential.algorithm)?;
    let minter = JwtMinter::new(key, base_url);
    let audit = JsonlAuditSink::open(&settings.audit_file(), settings.audit.fsync)?;
    let store: Arc<dyn Store> = match settings.store.backend {
        StoreBackend::Memory => Arc::new(MemoryStore::new()),
        StoreBackend::Redis => {
            // Connects lazily: Ferry starts (unready) while Redis is down.
            let redis = Arc::new(RedisStore::new(&settings.store.redis)?);
            redis.watch_state(settings.store.redis.state_check_interval);
            redis
        }
    };
    let verifier = Verifier::new(
        policies.issuers(),
        settings.verify_settings(),
        settings.fetch_settings(),
    )?
    .with_broker(&broker_keys(&minter))?;
    let audience = settings
        .credential
        .audience
        .clone()
        .unwrap_or_else(|| base_url.to_string());
    let broker_audience: Audience = audience
        .parse()
        .map_err(|_| StartupError::Audience(audience.clone()))?;
    let metrics = Arc::new(Metrics::new());
    metrics.policies_loaded.set(policies.len() as i64);
    Ok(ExchangeService {
        active: ArcSwap::from_pointee(Active { policies, verifier }),
        store,
        audit: Arc::new(audit),
        minter: Arc::new(minter),
        metrics,
        context: DecideContext { broker_audience },
        settings: ExchangeSettings {
            leeway: settings.verify.leeway,
            replay_margin: settings.verify.replay_margin,
            cache_credentials: settings.store.cache_credentials,
        },
    })
}

/// The broker as an issuer (`kind: ferry`): its public URL and the JWKS it publishes.
pub(crate) fn broker_keys(minter: &dyn Minter) -> BrokerKeys {
    BrokerKeys {
        public_url: minter.issuer().to_string(),
        jwks: minter.jwks().clone(),
    }
}

fn serve(
    settings: &Settings,
    listener: TcpListener,
    service: Arc<ExchangeService>,
    reloader: Arc<PolicyReloader>,
    base_url: &str,
) -> Result<Server, StartupError> {
    let inspector =
        crate::lifecycle::Inspector::new(service.minter.as_ref(), service.store.clone())
            .map_err(StartupError::Lifecycle)?;
    let lifecycle = Arc::new(crate::lifecycle::LifecycleService {
        inspector,
        store: service.store.clone(),
        audit: service.audit.clone(),
        audience: service.context.broker_audience.to_string(),
        metrics: service.metrics.clone(),
        acceptance_grace: service.settings.leeway + service.settings.replay_margin,
        clock_skew: service.settings.leeway,
    });
    let state = web::Data::new(AppState {
        lifecycle,
        service,
        reloader,
        public_url: base_url.to_string(),
        max_body_bytes: settings.server.max_body_bytes,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap_fn(|req, srv| {
                let id = http::accept_request_id(
                    req.headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok()),
                );
                req.extensions_mut().insert(RequestId(id.clone()));
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    if let Ok(v) = HeaderValue::from_str(&id) {
                        res.headers_mut()
                            .insert(HeaderName::from_static("x-request-id"), v);
                    }
                    Ok(res)
                }
            })
            .configure(http::routes)
    });
    let server = match settings.server.workers {
        Some(n) => server.workers(n.max(1)),
        None => server,
    };
    let server = match &settings.server.tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls_config(tls)?),
        None => server.listen(listener),
    }
    .map_err(|source| StartupError::Bind {
        addr: settings.server.listen.clone(),
        source,
    })?;
    Ok(server.run())
}

fn tls_config(tls: &TlsSettings) -> Result<rustls::ServerConfig, StartupError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StartupError::Tls(format!("certificate {}: {e}", tls.cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|_| {
        StartupError::Tls(format!(
            "private key {} is not a PEM key",
            tls.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| StartupError::Tls(e.to_string()))
}
