//! The console's Prometheus metrics on an explicit `Registry` (served at `/metrics`). Labels are
//! bounded: a login result, an override action code, a port id, a poll result; never a user
//! name, person, document or channel-independent free text.

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

/// The console's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Logins by result: `ok`, `invalid_credentials`, `locked_out`, `csrf`.
    pub logins: IntCounterVec,
    /// Overrides and other console writes by action (`gate1_open`, `mode_card_only`,
    /// `ack_alarm`, `cancel`, `guardian_consent`, `set_mode`, …) and result (`ok`, `refused`,
    /// `error`).
    pub overrides: IntCounterVec,
    /// Browsers subscribed to live updates.
    pub sse_clients: IntGauge,
    /// Ports reachable at the last poll (1) or not (0), by port.
    pub port_up: IntGaugeVec,
    /// Polls by port and result (`ok`, `unreachable`).
    pub polls: IntCounterVec,
    /// Requests refused by role, CSRF or session checks, by code.
    pub refused: IntCounterVec,
    /// When the console's certificates for each port expire (notAfter, Unix seconds), by
    /// `certificate` (`console_client`, `port_ca`) and `port`.
    pub certificate_expiry: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    /// Registers the console's metrics on `registry`.
    pub fn new(registry: Registry) -> prometheus::Result<Metrics> {
        let r = &registry;
        let sse_clients = IntGauge::new(
            "clearway_console_sse_clients",
            "Browsers subscribed to a port's live updates.",
        )?;
        r.register(Box::new(sse_clients.clone()))?;
        let port_up = IntGaugeVec::new(
            Opts::new(
                "clearway_console_port_up",
                "Whether a node of the port answered the last poll.",
            ),
            &["port"],
        )?;
        r.register(Box::new(port_up.clone()))?;
        let certificate_expiry = IntGaugeVec::new(
            Opts::new(
                "clearway_certificate_expiry_timestamp_seconds",
                "When a certificate the console uses for a port expires (notAfter), Unix time.",
            ),
            &["certificate", "port"],
        )?;
        r.register(Box::new(certificate_expiry.clone()))?;
        Ok(Metrics {
            logins: counter_vec(
                r,
                "clearway_console_logins_total",
                "Login attempts by result.",
                &["result"],
            )?,
            overrides: counter_vec(
                r,
                "clearway_console_overrides_total",
                "Console writes to a port (overrides, acknowledgements, service desk, roll-out) by action and result.",
                &["action", "result"],
            )?,
            sse_clients,
            port_up,
            polls: counter_vec(
                r,
                "clearway_console_polls_total",
                "Port polls by port and result.",
                &["port", "result"],
            )?,
            refused: counter_vec(
                r,
                "clearway_console_refused_total",
                "Requests refused by session, CSRF or role checks, by code.",
                &["code"],
            )?,
            certificate_expiry,
            registry,
        })
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            return format!("# cannot encode metrics: {e}\n");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Counts an SSE subscriber while it lives.
pub struct SseClientGuard(IntGauge);

impl SseClientGuard {
    /// One more subscriber.
    pub fn new(gauge: IntGauge) -> SseClientGuard {
        gauge.inc();
        SseClientGuard(gauge)
    }
}

impl Drop for SseClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_bounded_labels() {
        let m = Metrics::new(Registry::new()).expect("metrics");
        m.logins.with_label_values(&["ok"]).inc();
        m.overrides.with_label_values(&["gate1_open", "ok"]).inc();
        {
            let _a = SseClientGuard::new(m.sse_clients.clone());
            let _b = SseClientGuard::new(m.sse_clients.clone());
            assert!(m.render().contains("clearway_console_sse_clients 2"));
        }
        let text = m.render();
        assert!(text.contains("clearway_console_sse_clients 0"), "{text}");
        assert!(text.contains("clearway_console_logins_total{result=\"ok\"} 1"));
        assert!(
            text.contains(
                "clearway_console_overrides_total{action=\"gate1_open\",result=\"ok\"} 1"
            )
        );
    }
}
