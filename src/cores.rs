//! The cores this process may use, read once. `available_parallelism` counts the affinity
//! mask and a container's CPU limit, so a pod limited to one core gets 1.

use std::sync::OnceLock;

pub fn available() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
