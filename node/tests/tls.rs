//! TLS on the node's listeners, against a real node on loopback and real TLS clients: who is
//! refused at the handshake (no CA, a wrong CA, plain HTTP, and with mutual TLS no client
//! certificate or a revoked one), a certificate, CRL or broken file replaced on disk while the
//! node serves, the expiry alarm, and the admin interface requiring client certificates.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tpw_node::tls::dev::{DevCa, LOOPBACK_NAMES};
use tpw_node::tls::{ClientTls, TlsSettings};

/// A CA's files in `folder`: the CA certificate, and a server certificate and key for loopback
/// valid `days`.
fn server_files(
    ca: &DevCa,
    folder: &Path,
    stem: &str,
    serial: u64,
    days: i64,
) -> (PathBuf, PathBuf) {
    ca.issue_server(&LOOPBACK_NAMES, serial, days)
        .unwrap()
        .save(folder, stem)
        .unwrap()
}

/// A node folder in `folder` whose API serves TLS with a certificate (serial 1, a year) from
/// a new CA in `folder/tls`: its configuration, the CA file, and the certificate and key files.
fn tls_node(folder: &Path) -> (tpw_node::config::NodeConfig, PathBuf, PathBuf, PathBuf) {
    let tls_folder = folder.join("tls");
    let ca = DevCa::generate("test CA").unwrap();
    let ca_file = ca.save(&tls_folder).unwrap();
    let (certificate, key) = server_files(&ca, &tls_folder, "api", 1, 365);
    let mut config = common::prepare(folder);
    config.plain_http = false;
    config.api_tls = Some(TlsSettings::new(certificate.clone(), key.clone()));
    (config, ca_file, certificate, key)
}

/// Replaces `path`'s contents in one step (a rename), as an operator's deployment does.
fn replace(path: &Path, contents: &[u8]) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, contents).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

/// One HTTPS request to `path` on `address` with `tls`: the server's leaf certificate and
/// the answer's status line, or why the connection failed. A client certificate refused under
/// TLS 1.3 shows after the client's side of the handshake, on the first read, so the request
/// is made in full.
async fn request(
    address: SocketAddr,
    tls: &ClientTls,
    path: &str,
) -> Result<(Vec<u8>, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls.config().unwrap()));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let exchange = async {
        let mut stream = connector.connect(name, tcp).await?;
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.to_vec())
            .unwrap_or_default();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nhost: node\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let status = String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        Ok::<_, std::io::Error>((leaf, status))
    };
    match tokio::time::timeout(Duration::from_secs(10), exchange).await {
        Ok(Ok((leaf, status))) if status.starts_with("HTTP/1.1") => Ok((leaf, status)),
        Ok(Ok((_, status))) => Err(format!("no HTTP answer: {status:?}")),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// The DER of the first certificate of a PEM file.
fn der_of(path: &Path) -> Vec<u8> {
    tpw_node::tls::certificates(path, &std::fs::read(path).unwrap()).unwrap()[0].to_vec()
}

/// A GET over HTTPS with `tls`: the status and the body.
async fn get(address: SocketAddr, tls: &ClientTls, path: &str) -> (u16, String) {
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls.config().unwrap())
        .build()
        .unwrap();
    let answer = http
        .get(format!("https://{address}{path}"))
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// The value of an unlabelled metric on the node's /metrics.
async fn metric(address: SocketAddr, tls: &ClientTls, name: &str) -> u64 {
    let (_, text) = get(address, tls, "/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
        .parse()
        .unwrap()
}

/// Polls `check` every 100 ms for up to 10 s (the node checks its files every second).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_the_ca_are_refused_and_a_replaced_certificate_is_served_without_restart() {
    // Proves the API's TLS: a client trusting the node's CA is served; one trusting the system
    // roots only, one trusting another CA, and a plain HTTP client are refused at the
    // handshake; a certificate replaced on disk is what the next connection gets, with no
    // restart; files replaced by ones that do not load leave the last good certificate
    // served, counted once; and a certificate near its end raises the alarm, /v1/ready's
    // warning and the seconds-left gauge.
    let folder = tempfile::tempdir().unwrap();
    let (config, ca_file, certificate, key) = tls_node(folder.path());
    let ca = DevCa::load(&folder.path().join("tls")).unwrap();
    config.validate().unwrap();
    let node = tpw_node::node::start(&config).await.unwrap();
    let address = node.api_address;
    let trusting = ClientTls::with_ca_file(&ca_file);

    let (leaf, status) = request(address, &trusting, "/v1/health").await.unwrap();
    assert!(status.contains("200"), "{status}");
    assert_eq!(leaf, der_of(&certificate));

    let other_ca = DevCa::generate("another CA").unwrap();
    let other_ca_file = other_ca.save(&folder.path().join("other")).unwrap();
    for (who, tls) in [
        ("the system's roots", ClientTls::default()),
        ("another CA", ClientTls::with_ca_file(&other_ca_file)),
    ] {
        let refused = request(address, &tls, "/v1/health").await.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{who}: {refused}");
    }
    let plain = reqwest::Client::new()
        .get(format!("http://{address}/v1/health"))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP is not served on a TLS listener"
    );
    assert!(metric(address, &trusting, "tpw_tls_handshake_failures_total").await >= 3);

    // Rotation: a new certificate (serial 2) and key, each replaced on disk.
    let staged = folder.path().join("staged");
    let (new_certificate, new_key) = server_files(&ca, &staged, "api", 2, 365);
    replace(&key, &std::fs::read(&new_key).unwrap());
    replace(&certificate, &std::fs::read(&new_certificate).unwrap());
    let expected = der_of(&new_certificate);
    eventually("the rotated certificate served", || async {
        request(address, &trusting, "/v1/health")
            .await
            .is_ok_and(|(leaf, _)| leaf == expected)
    })
    .await;
    assert_eq!(metric(address, &trusting, "tpw_tls_reloads_total").await, 1);

    // A broken key: refused, reported once, the last good certificate still served.
    replace(
        &key,
        b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    );
    eventually("the broken key reported", || async {
        metric(address, &trusting, "tpw_tls_reload_failures_total").await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        metric(address, &trusting, "tpw_tls_reload_failures_total").await,
        1
    );
    let (leaf, _) = request(address, &trusting, "/v1/health").await.unwrap();
    assert_eq!(leaf, expected);

    // A certificate with 10 days left: alarm, warning, gauge.
    let (short_certificate, short_key) = server_files(&ca, &staged, "short", 3, 10);
    replace(&key, &std::fs::read(&short_key).unwrap());
    replace(&certificate, &std::fs::read(&short_certificate).unwrap());
    eventually("the expiry alarm", || async {
        metric(address, &trusting, "tpw_tls_api_certificate_expiry_alarm").await == 1
    })
    .await;
    let left = metric(address, &trusting, "tpw_tls_api_certificate_expiry_seconds").await;
    assert!((9 * 86_400..=10 * 86_400).contains(&left), "{left} s left");
    let (_, ready) = get(address, &trusting, "/v1/ready").await;
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    // The gauge is taken when the files load: 10 days within the issuing second, 9 after.
    let warnings = ready["warnings"].to_string();
    let expected = format!(
        "tls_certificate_expiry: the api listener's certificate expires in {} days",
        left / 86_400
    );
    assert!(warnings.contains(&expected), "{warnings}");
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_clients_without_a_certificate_or_with_a_revoked_one() {
    // Proves mutual TLS on the API and on the admin interface: a client without a
    // certificate, or with one from another CA, is refused at the handshake; one with a
    // certificate from the client CA is served; a CRL revoking it, written while the node
    // serves, refuses it from the next connection while another client goes on; and the
    // operator's admin interface answers only a client with a certificate.
    let folder = tempfile::tempdir().unwrap();
    let tls_folder = folder.path().join("tls");
    let server_ca = DevCa::generate("server CA").unwrap();
    let ca_file = server_ca.save(&tls_folder).unwrap();
    let (certificate, key) = server_files(&server_ca, &tls_folder, "node", 1, 365);
    let clients_ca = DevCa::generate("partners CA").unwrap();
    let clients_ca_file = clients_ca.save(&folder.path().join("clients")).unwrap();
    let crl_file = folder.path().join("clients").join("revoked.crl");
    std::fs::write(&crl_file, clients_ca.revocation_list(1, &[]).unwrap()).unwrap();
    let client_files = |name: &str, serial: u64| {
        clients_ca
            .issue_client(name, serial)
            .unwrap()
            .save(&folder.path().join("clients"), name)
            .unwrap()
    };
    let acme = client_files("acme", 10);
    let globex = client_files("globex", 11);
    let stranger = DevCa::generate("stranger CA")
        .unwrap()
        .issue_client("stranger", 12)
        .unwrap()
        .save(&folder.path().join("stranger"), "stranger")
        .unwrap();

    let (mut config, admin, token) = common::prepare_with_admin(folder.path());
    config.plain_http = false;
    let mut settings = TlsSettings::new(certificate, key);
    settings.client_ca_file = Some(clients_ca_file);
    settings.crl_file = Some(crl_file.clone());
    config.api_tls = Some(settings.clone());
    config.admin_tls = Some(settings);
    config.validate().unwrap();
    let node = tpw_node::node::start(&config).await.unwrap();
    let address = node.api_address;
    let with_identity = |identity: Option<(PathBuf, PathBuf)>| ClientTls {
        identity,
        ..ClientTls::with_ca_file(&ca_file)
    };

    let refused = request(address, &with_identity(None), "/v1/health")
        .await
        .unwrap_err();
    assert!(!refused.is_empty());
    let refused = request(address, &with_identity(Some(stranger)), "/v1/health")
        .await
        .unwrap_err();
    assert!(!refused.is_empty());
    for client in [&acme, &globex] {
        let (_, status) = request(address, &with_identity(Some(client.clone())), "/v1/health")
            .await
            .unwrap();
        assert!(status.contains("200"), "{status}");
    }

    // The admin interface: refused without a certificate, served with one and the token.
    let admin_address: SocketAddr = admin.parse().unwrap();
    assert!(
        request(admin_address, &with_identity(None), "/admin/v1/audit")
            .await
            .is_err()
    );
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(with_identity(Some(acme.clone())).config().unwrap())
        .build()
        .unwrap();
    let answer = http
        .get(format!("https://{admin}/admin/v1/audit"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);

    // acme's certificate revoked: refused from the next connection; globex still served.
    replace(
        &crl_file,
        clients_ca.revocation_list(2, &[10]).unwrap().as_bytes(),
    );
    eventually("the revocation in force", || async {
        request(address, &with_identity(Some(acme.clone())), "/v1/health")
            .await
            .is_err()
    })
    .await;
    let (_, status) = request(address, &with_identity(Some(globex.clone())), "/v1/health")
        .await
        .unwrap();
    assert!(status.contains("200"), "{status}");
    node.stop().await.unwrap();
}

/// A webhook receiver over TLS with a certificate from `ca`: it records each delivery's
/// `tpw-delivery` header.
struct TlsReceiver {
    port: u16,
    received: Arc<std::sync::Mutex<Vec<String>>>,
}

/// Accepts TCP connections and completes their TLS handshake (axum serves what it returns).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, peer)) = self.tcp.accept().await else {
                continue;
            };
            // A client that refuses this certificate ends its handshake: wait for the next.
            if let Ok(stream) = self.acceptor.accept(stream).await {
                return (stream, peer);
            }
        }
    }
    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl TlsReceiver {
    async fn start(ca: &DevCa, folder: &Path) -> Self {
        let (certificate, key) = server_files(ca, folder, "receiver", 40, 365);
        let tls = tpw_node::tls::ServerTls::load(&TlsSettings::new(certificate, key)).unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = Arc::clone(&received);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let recorded = Arc::clone(&recorded);
                async move {
                    let id = headers["tpw-delivery"].to_str().unwrap().to_string();
                    recorded.lock().unwrap().push(id);
                    "ok"
                }
            }),
        );
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(tls.current()),
        };
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { port, received }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_reach_an_https_receiver_trusted_through_its_origins_ca_file() {
    // Proves webhook delivery over https: a receiver whose certificate comes from a test CA
    // gets its deliveries when the operator names that CA for its origin; the same receiver
    // under another origin (no CA named; the system's roots do not know the test CA) fails
    // the TLS check, and a plain http endpoint is refused, both dead-lettered with the reason.
    use tpw_contracts::ops::SetWebhook;
    use tpw_contracts::Operation;
    let folder = tempfile::tempdir().unwrap();
    let receiver_ca = DevCa::generate("receiver CA").unwrap();
    let receiver_ca_file = receiver_ca.save(&folder.path().join("receiver")).unwrap();
    let receiver = TlsReceiver::start(&receiver_ca, &folder.path().join("receiver")).await;
    let mut config = common::prepare(folder.path());
    config.webhooks.max_attempts = 1;
    // The receiver listens on loopback.
    config.webhooks.allow_private_networks = true;
    config.webhooks.ca_files.insert(
        format!("https://127.0.0.1:{}", receiver.port),
        receiver_ca_file,
    );
    config.validate().unwrap();
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = common::network_id(&config);
    let base = format!("http://{}", node.api_address);
    let acme_key = common::key(folder.path(), "acme");
    let endpoints = [
        format!("https://127.0.0.1:{}/hook", receiver.port),
        format!("https://localhost:{}/hook", receiver.port),
        format!("http://127.0.0.1:{}/hook", common::free_port()),
    ];
    let mut operations: Vec<Operation> = endpoints
        .iter()
        .enumerate()
        .map(|(endpoint, url)| {
            Operation::SetWebhook(SetWebhook {
                endpoint: endpoint as u16,
                url: url.clone(),
            })
        })
        .collect();
    operations.push(common::payment(
        1,
        common::account_of(3, common::EUR),
        common::account_of(5, common::EUR),
        common::EUR,
        1,
    ));
    let client = tpw_node::client::Client::new(&base);
    for operation in operations {
        let envelope = common::sign(network, &acme_key, operation);
        let (status, _) = client.submit(&[envelope], true, None).await.unwrap();
        assert_eq!(status, 200);
    }
    let acme = tpw_node::client::Client::new(&base).with_key(&acme_key);
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let listed = acme.webhooks().await.unwrap();
        let settled = !receiver.received.lock().unwrap().is_empty()
            && listed.endpoints[1..]
                .iter()
                .all(|endpoint| !endpoint.dead_letters.is_empty());
        if settled {
            break listed;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries not settled: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(listed.endpoints[0].dead_letters.is_empty(), "{listed:?}");
    let ids = receiver.received.lock().unwrap().clone();
    assert!(ids.iter().all(|id| id.starts_with("3.0.")), "{ids:?}");
    let tls_failure = &listed.endpoints[1].dead_letters[0].error;
    assert!(
        tls_failure.starts_with("TLS failed: invalid peer certificate: UnknownIssuer"),
        "{tls_failure}"
    );
    assert_eq!(
        listed.endpoints[2].dead_letters[0].error,
        "plain http not allowed"
    );
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_or_garbled_handshake_is_cut_off_and_the_node_still_serves() {
    // Proves a TLS listener holds no connection for a client that never completes its
    // handshake: silence is cut off after the 10 s handshake bound, bytes that are not TLS
    // at once; both are counted, and the node serves the next client.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let folder = tempfile::tempdir().unwrap();
    let (config, ca_file, _, _) = tls_node(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let address = node.api_address;
    let trusting = ClientTls::with_ca_file(&ca_file);

    let closed_within = |mut stream: tokio::net::TcpStream, bound: Duration| async move {
        let started = Instant::now();
        let mut buffer = [0u8; 1024];
        loop {
            match tokio::time::timeout(bound, stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => continue,
                Err(_) => return None,
            }
        }
    };
    let mut garbled = tokio::net::TcpStream::connect(address).await.unwrap();
    garbled
        .write_all(b"GET / HTTP/1.1\r\nhost: node\r\n\r\n")
        .await
        .unwrap();
    let took = closed_within(garbled, Duration::from_secs(5)).await;
    assert!(
        took.is_some_and(|took| took < Duration::from_secs(2)),
        "{took:?}"
    );

    let silent = tokio::net::TcpStream::connect(address).await.unwrap();
    let took = closed_within(silent, Duration::from_secs(15)).await;
    assert!(
        took.is_some_and(|took| took >= Duration::from_secs(9) && took < Duration::from_secs(13)),
        "a silent client is cut off at the handshake bound: {took:?}"
    );
    assert!(metric(address, &trusting, "tpw_tls_handshake_failures_total").await >= 2);
    let (_, status) = request(address, &trusting, "/v1/health").await.unwrap();
    assert!(status.contains("200"), "{status}");
    node.stop().await.unwrap();
}
