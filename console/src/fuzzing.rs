//! Fuzzing harnesses for the console's parsers of untrusted bytes: its configuration file and
//! the forms a browser posts. Each takes arbitrary bytes, feeds them to the console's own
//! parsers as the server does, and checks what must hold; a panic is a bug. The cargo-fuzz
//! targets `fuzz/fuzz_targets/console_*.rs` call these, and `tests/tests/console_fuzz_corpus.rs`
//! replays their committed corpora in CI (the node's harnesses are `clearway_node::fuzzing`).

use std::path::Path;

use crate::config::ConsoleConfig;

/// Every console fuzz target, by the name of its file under `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[("console_config", config), ("console_form", form)];

/// `console.toml` text: parsed and validated as `clearway-console serve` does; a config that
/// parses also re-validates, and survives a round trip through TOML.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = ConsoleConfig::parse(text, Path::new("/fuzz")) else {
        return;
    };
    assert_eq!(c.validate(), Ok(()), "a parsed config validates");
    let again = toml::to_string(&c).expect("a parsed config serialises");
    let back = ConsoleConfig::parse(&again, Path::new("/fuzz")).expect("and parses back");
    assert_eq!(back, c, "the round trip keeps the config");
}

/// A form body as browsers post it (`application/x-www-form-urlencoded`): the guard's CSRF
/// field lookup, the login form, an account action's fields with the checks the service runs,
/// and the rollout page's text fields (halls, nodes, a port definition file).
pub fn form(data: &[u8]) {
    let _ = crate::server::csrf_from_form(data);
    let _ = serde_urlencoded::from_bytes::<crate::server::LoginFields>(data);
    if let Ok(m) = serde_urlencoded::from_bytes::<crate::api::ManageUser>(data) {
        let _ = crate::auth::check_user_name(m.name.trim());
        let _ = crate::service::check_reason(&m.reason);
    }
    if let Ok(c) = serde_urlencoded::from_bytes::<crate::api::ChangePassword>(data) {
        let _ = c.new == c.repeat;
    }
    let text = String::from_utf8_lossy(data);
    let _ = crate::rollout::parse_halls(&text);
    let _ = crate::rollout::parse_nodes(&text);
    let _ = clearway_wire::definition::PortDefinition::parse(&text);
}
