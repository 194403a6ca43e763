//! Child processes (nodes, the console, Prometheus): stopping them the way an operator would,
//! with SIGTERM, and waiting a bounded time before SIGKILL.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// Sends `signal` to `child` (an error if it is gone already).
pub fn signal(child: &Child, signal: Signal) -> std::io::Result<()> {
    kill_process(Pid::from_child(child), signal).map_err(std::io::Error::from)
}

/// How a child ended when asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited by itself after SIGTERM (or had exited before), with this status.
    Exited(ExitStatus),
    /// It did not exit within the grace period and was killed.
    Killed,
}

impl Stopped {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        matches!(self, Stopped::Exited(s) if s.success())
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Exited(s) => write!(f, "{s}"),
            Stopped::Killed => f.write_str("killed after the grace period"),
        }
    }
}

/// Sends SIGTERM to every child, then waits for each up to `grace` (all together), and
/// SIGKILLs the ones still running. Returns how each ended, in order.
pub fn terminate_all(children: &mut [&mut Child], grace: Duration) -> Vec<Stopped> {
    for c in children.iter_mut() {
        // A child already reaped keeps its status (std remembers it); don't signal its pid.
        if let Ok(None) = c.try_wait() {
            let _ = signal(c, Signal::TERM);
        }
    }
    let deadline = Instant::now() + grace;
    children
        .iter_mut()
        .map(|c| {
            loop {
                match c.try_wait() {
                    Ok(Some(status)) => break Stopped::Exited(status),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break Stopped::Killed;
                    }
                }
            }
        })
        .collect()
}

/// [`terminate_all`] for one child.
pub fn terminate(child: &mut Child, grace: Duration) -> Stopped {
    terminate_all(&mut [child], grace)
        .pop()
        .unwrap_or(Stopped::Killed)
}
