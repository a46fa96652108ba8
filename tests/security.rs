//! TLS and SASL to a real broker: tansu with SCRAM users and `--authentication`, behind a TLS
//! front (socat; tansu 0.6's own TLS listener cannot take a certificate and its key together).
//! Private CA, SCRAM-SHA-256 and -512, mutual TLS; a wrong password, a missing CA or a missing
//! client certificate each fail clearly, and no output holds a secret.

mod common;

use common::pki::Pki;
use common::tansu::Tansu;
use common::*;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const PASSWORD_512: &str = "s3cret-alice-512";
const PASSWORD_256: &str = "s3cret-bob-256";

/// socat terminating TLS on a free port and passing the bytes to tansu.
struct TlsFront {
    child: Child,
    port: u16,
}

impl TlsFront {
    fn start(pki: &Pki, upstream: u16, client_certificates: bool) -> TlsFront {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut listen = format!(
            "OPENSSL-LISTEN:{port},fork,reuseaddr,bind=127.0.0.1,cert={},key={}",
            pki.file("server.pem").display(),
            pki.file("server.key").display()
        );
        if client_certificates {
            listen += &format!(",verify=1,cafile={}", pki.file("ca.pem").display());
        } else {
            listen += ",verify=0";
        }
        let child = Command::new("socat")
            .args([listen, format!("TCP:127.0.0.1:{upstream}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat runs (bash tests/run.sh installs it: apt-get install socat)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "socat did not listen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        TlsFront { child, port }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tansu with two SCRAM users and 3 x 500 records, then restarted to require SASL and to
/// advertise the TLS front.
fn secured_broker(pki: &Pki, client_certificates: bool) -> (Tansu, TlsFront) {
    let rt = runtime();
    let mut tansu = Tansu::start();
    tansu.create_topic(&rt, "secure", 3);
    for p in 0..3 {
        runner::embedded::produce(&tansu.bootstrap_servers(), "secure", numbered(p, 0, 500))
            .unwrap();
    }
    tansu.create_user("alice", PASSWORD_512, "scram512");
    tansu.create_user("bob", PASSWORD_256, "scram256");
    let port: u16 = tansu
        .bootstrap_servers()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let front = TlsFront::start(pki, port, client_certificates);
    tansu.restart_as(front.port, true);
    (tansu, front)
}

fn config(dir: &Path, front: &TlsFront, ssl: serde_json::Value, sasl: serde_json::Value) {
    // The group's committed offsets live in the broker: a group per config, as each starts
    // from an empty store.
    let group = dir.file_name().unwrap().to_string_lossy().to_string();
    let mut connections = serde_json::json!({
        "bootstrap_servers": format!("127.0.0.1:{}", front.port),
        "storage_url": "out",
        "sasl": sasl,
    });
    if !ssl.is_null() {
        connections["ssl_config"] = ssl;
    }
    write_config(
        dir,
        connections,
        serde_json::json!([{"topic": "secure", "format": "json", "group_id": group}]),
    );
}

/// `runner once`: success, and stdout and stderr together.
fn once(dir: &Path) -> (bool, String) {
    let out = runner_command(dir).args(["once"]).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for secret in [PASSWORD_512, PASSWORD_256, "wrong-password"] {
        assert!(!text.contains(secret), "a password in the output:\n{text}");
    }
    (out.status.success(), text)
}

fn everything() -> Vec<(i32, std::ops::Range<i64>)> {
    (0..3).map(|p| (p, 0..500)).collect()
}

#[test]
fn sasl_ssl_with_a_private_ca_and_scram_exports_every_record() {
    let pki = Pki::new();
    let (_tansu, front) = secured_broker(&pki, false);
    let ca = serde_json::json!({"ca": pki.file("ca.pem")});
    for (user, password, mechanism) in [
        ("alice", PASSWORD_512, "SCRAM-SHA-512"),
        ("bob", PASSWORD_256, "SCRAM-SHA-256"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let sasl =
            serde_json::json!({"mechanism": mechanism, "username": user, "password": password});
        config(dir.path(), &front, ca.clone(), sasl);
        let (ok, text) = once(dir.path());
        assert!(ok, "{mechanism}: {text}");
        assert_exactly(&dir.path().join("out"), "secure", &everything());
    }
}

#[test]
fn mutual_tls_exports_with_a_client_certificate_and_fails_clearly_without() {
    let pki = Pki::new();
    let (_tansu, front) = secured_broker(&pki, true);
    let sasl = serde_json::json!({"mechanism": "SCRAM-SHA-512", "username": "alice", "password": PASSWORD_512});
    let dir = tempfile::tempdir().unwrap();
    let mtls = serde_json::json!({"ca": pki.file("ca.pem"), "cert": pki.file("client.pem"),
        "key": pki.file("client.key")});
    config(dir.path(), &front, mtls, sasl.clone());
    let (ok, text) = once(dir.path());
    assert!(ok, "{text}");
    assert_exactly(&dir.path().join("out"), "secure", &everything());

    let without = tempfile::tempdir().unwrap();
    config(
        without.path(),
        &front,
        serde_json::json!({"ca": pki.file("ca.pem")}),
        sasl,
    );
    let (ok, text) = once(without.path());
    assert!(!ok, "a run without a client certificate succeeded: {text}");
    assert!(
        text.contains("ssl_config"),
        "the error does not point at ssl_config: {text}"
    );
}

#[test]
fn a_wrong_password_or_an_untrusted_broker_fails_clearly_without_leaking_a_secret() {
    let pki = Pki::new();
    let (_tansu, front) = secured_broker(&pki, false);
    let ca = serde_json::json!({"ca": pki.file("ca.pem")});

    let wrong = tempfile::tempdir().unwrap();
    let sasl = serde_json::json!({"mechanism": "SCRAM-SHA-512", "username": "alice", "password": "wrong-password"});
    config(wrong.path(), &front, ca, sasl.clone());
    let (ok, text) = once(wrong.path());
    assert!(!ok, "a wrong password succeeded: {text}");
    assert!(
        text.contains("sasl"),
        "the error does not point at sasl: {text}"
    );
    assert!(
        !wrong.path().join("out/secure").exists(),
        "files were written"
    );

    // The broker's certificate is from a CA the client was not given: the system's CAs.
    let untrusted = tempfile::tempdir().unwrap();
    let good = serde_json::json!({"mechanism": "SCRAM-SHA-512", "username": "alice", "password": PASSWORD_512});
    config(untrusted.path(), &front, serde_json::json!({}), good);
    let (ok, text) = once(untrusted.path());
    assert!(!ok, "an untrusted broker was accepted: {text}");
    assert!(
        text.contains("ssl_config"),
        "the error does not point at ssl_config: {text}"
    );
}
