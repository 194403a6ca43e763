//! Shared helpers for Clearway's end-to-end tests (in `tests/tests/`): where the assets, the
//! fixtures and the built `clearway-node` binary are. Tests fail (never skip) when something is
//! missing, with a message that says how to make it: `just test` runs `just setup` and builds first.
//!
//! The same harness runs the demo (`clearway-demo`, [`demo`]): a whole port on one machine.

pub mod console;
pub mod demo;
pub mod flood;
pub mod http;
pub mod lane;
pub mod port;
pub mod process;
pub mod prometheus;

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The assets directory made by `just setup` (`CLEARWAY_ASSETS` overrides).
pub fn assets() -> PathBuf {
    find_assets().unwrap_or_else(|e| panic!("{e}"))
}

/// The assets directory, or why it cannot be used.
pub fn find_assets() -> Result<PathBuf, String> {
    let dir = std::env::var_os("CLEARWAY_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("assets"));
    if dir.join("models").is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "{} has no models/; run `just setup` (or set CLEARWAY_ASSETS)",
            dir.display()
        ))
    }
}

/// A photo under `assets/photos/`.
pub fn photo(rel: &str) -> PathBuf {
    let p = assets().join("photos").join(rel);
    assert!(p.is_file(), "{} missing; run `just setup`", p.display());
    p
}

/// The ONNX Runtime library (`ORT_DYLIB_PATH` overrides).
pub fn ort_library() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| assets().join("onnxruntime/libonnxruntime.so.1.31.1"))
}

/// The `clearway-node` binary of the same build profile as this test (`CLEARWAY_NODE_BIN`
/// overrides). Test executables live in `<target>/<profile>/deps/`.
pub fn node_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CLEARWAY_NODE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = profile_dir.join("clearway-node");
    assert!(
        bin.is_file(),
        "{} not built; run `cargo build -p clearway-node` with the same profile (`just test` does)",
        bin.display()
    );
    bin
}

/// What a `clearway-node` command did.
pub struct Run {
    /// Exit status (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `clearway-node` with `args` (assets and ONNX Runtime from this checkout, no stdin) and
/// fails the test if it panicked: bad input must be an error line, never a panic.
pub fn node(args: &[&str]) -> Run {
    let out = std::process::Command::new(node_bin())
        .args(args)
        .env("CLEARWAY_ASSETS", assets())
        .env("ORT_DYLIB_PATH", ort_library())
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("clearway-node runs");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "clearway-node panicked on {args:?}: {}",
        run.stderr
    );
    run
}

/// A path as the `&str` a command line takes (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The files under `dir` (recursively) whose bytes contain `needle`: how the erasure tests look
/// at a disk as a thief would.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}
