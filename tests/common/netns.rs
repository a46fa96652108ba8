//! A network namespace joined to this one by a veth pair, so a broker inside it can be slowed
//! (`tc` token bucket) or cut off (the link set down) for real, without touching loopback,
//! which the other tests share. Needs root and iproute2 (`ip`, `tc`). This machine's kernel
//! has no `netem` (delay, loss) nor tc classifiers, so loss is not among the faults.

use std::process::Command;

pub const INSTALL: &str =
    "run the tests as root with iproute2 installed (bash tests/run.sh installs it)";

pub struct Netns {
    pub name: String,
    /// The namespace's address, reachable from here.
    pub inside: String,
    /// This side's end of the veth pair.
    outside_if: String,
    inside_if: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip ({e}); {INSTALL}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}; {INSTALL}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// A namespace `rn<pid>x<k>` at 10.213.<n>.2, this side at 10.213.<n>.1; `k` tells
    /// apart the namespaces of tests running at once in one process.
    pub fn create() -> Netns {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = std::process::id();
        let n = (id * 8 + k) % 250 + 1;
        let name = format!("rn{id}x{k}");
        let outside_if = format!("ro{id}x{k}");
        let inside_if = format!("ri{id}x{k}");
        let inside = format!("10.213.{n}.2");
        let ns = Netns {
            name: name.clone(),
            inside: inside.clone(),
            outside_if: outside_if.clone(),
            inside_if: inside_if.clone(),
        };
        let outside_addr = format!("10.213.{n}.1/24");
        let inside_addr = format!("{inside}/24");
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &name],
            vec![
                "link",
                "add",
                &outside_if,
                "type",
                "veth",
                "peer",
                "name",
                &inside_if,
            ],
            vec!["link", "set", &inside_if, "netns", &name],
            vec!["addr", "add", &outside_addr, "dev", &outside_if],
            vec!["link", "set", &outside_if, "up"],
            vec!["-n", &name, "addr", "add", &inside_addr, "dev", &inside_if],
            vec!["-n", &name, "link", "set", &inside_if, "up"],
            vec!["-n", &name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            if let Err(e) = ip(&step) {
                panic!("cannot make a network namespace for the test: {e}");
            }
        }
        ns
    }

    /// Limits the link to `rate` (`8mbit`) both ways.
    pub fn slow(&self, rate: &str) {
        self.tc(&[
            "qdisc", "replace", "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms",
        ]);
    }

    /// Lifts the rate limit.
    pub fn unslow(&self) {
        self.tc(&["qdisc", "del", "root"]);
    }

    /// Cuts the link: packets either way go nowhere until `restore`.
    pub fn cut(&self) {
        if let Err(e) = ip(&["link", "set", &self.outside_if, "down"]) {
            panic!("{e}");
        }
    }

    pub fn restore(&self) {
        if let Err(e) = ip(&["link", "set", &self.outside_if, "up"]) {
            panic!("{e}");
        }
    }

    /// `tc <args>` with `dev <veth end>` after the first two words, on both ends.
    fn tc(&self, args: &[&str]) {
        for (ns, dev) in [
            (None, &self.outside_if),
            (Some(&self.name), &self.inside_if),
        ] {
            let mut cmd = match ns {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", ns, "tc"]);
                    c
                }
                None => Command::new("tc"),
            };
            cmd.args(&args[..2]).args(["dev", dev]).args(&args[2..]);
            let out = cmd
                .output()
                .unwrap_or_else(|e| panic!("cannot run tc ({e}); {INSTALL}"));
            assert!(
                out.status.success() || args[1] == "del",
                "tc {}: {}; {INSTALL}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.outside_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
