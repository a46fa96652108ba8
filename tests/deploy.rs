//! The deployment files: the Kubernetes manifests are valid objects of the current API
//! (kubernetes-validate, offline, strict), and the arguments they give runner parse.

use std::path::Path;
use std::process::Command;

fn manifests() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_kubernetes_manifests_validate_strictly() {
    let files = manifests();
    assert!(files.len() >= 4, "{files:?}");
    let out = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict"])
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run kubernetes-validate ({e}); install it with: bash tests/run.sh, or pip install kubernetes-validate==1.37.0")
        });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("No module named"),
        "kubernetes-validate is missing; install it with: bash tests/run.sh, or pip install kubernetes-validate==1.37.0"
    );
    assert!(out.status.success(), "{text}");
    for kind in ["cronjob/", "job/", "deployment/", "configmap/", "secret/"] {
        assert!(text.contains(kind), "no {kind} validated: {text}");
    }
}

/// Each container's `args` in the manifests, as runner would get them.
fn container_args(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("args: "))
        .map(|list| {
            serde_json::from_str::<Vec<String>>(list)
                .unwrap_or_else(|e| panic!("args are not a JSON-style list ({e}): {list}"))
        })
        .collect()
}

#[test]
fn the_arguments_in_the_manifests_parse() {
    let mut seen = 0;
    for file in manifests() {
        for args in container_args(&std::fs::read_to_string(&file).unwrap()) {
            let out = Command::new(env!("CARGO_BIN_EXE_runner"))
                .args(&args)
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: runner {args:?}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            seen += 1;
        }
    }
    assert!(seen >= 3, "found the args of {seen} containers");
}
