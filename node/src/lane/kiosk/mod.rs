//! The gate screens a traveller reads: the kiosk pages a lane serves to the browsers at gate 1
//! and gate 2, in Traditional Chinese, Simplified Chinese, Portuguese and English.
//!
//! The procedure says *what* a screen shows with a stable code ([`Screen::code`]); this module
//! says it in words. [`screen_text`] maps a code to messages (a headline, a detail, whether the
//! registration declaration's Agree / Not now buttons go with it, a tone for colour), and
//! [`Texts`] holds the translations — Fluent resource files under `locales/<tag>/kiosk.ftl`,
//! compiled into the binary, one per language, each with the same messages (tested). The HTTP
//! side (`runtime.rs`) serves the page (`page/`), and `GET /kiosk/screen?gate=1&lang=pt`
//! answers a [`KioskView`] the page renders; taps go to `POST /lane/screen/agree|decline`.
//!
//! Fluent (`fluent-bundle`, Project Fluent's Rust implementation, used by Firefox) is here
//! rather than a hand-made table: translators edit plain `.ftl` files, and placeables
//! (`{ $age }`) and per-language plural rules come with it.

use std::borrow::Cow;

use clearway_gallery::person::{ADULT_AGE, Ineligible, MIN_AGE};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use serde::Serialize;
use unic_langid::LanguageIdentifier;

use super::document::DocumentError;
use super::procedure::{GateId, Screen};

#[cfg(test)]
mod tests;

/// The languages, in the order the page offers them; the first is the default (Macao's
/// official languages are Chinese and Portuguese; Mainland travellers read Simplified Chinese).
pub const LANGUAGES: [(&str, &str); 4] = [
    ("zh-Hant", include_str!("locales/zh-Hant/kiosk.ftl")),
    ("zh-Hans", include_str!("locales/zh-Hans/kiosk.ftl")),
    ("pt", include_str!("locales/pt/kiosk.ftl")),
    ("en", include_str!("locales/en/kiosk.ftl")),
];

/// The kiosk page and its script and style, served as they are.
pub const PAGE_HTML: &str = include_str!("page/kiosk.html");
/// The page's script (no inline script: the page's Content-Security-Policy allows only these).
pub const PAGE_JS: &str = include_str!("page/kiosk.js");
/// The page's style.
pub const PAGE_CSS: &str = include_str!("page/kiosk.css");
/// The page's icon.
pub const PAGE_ICON: &str = include_str!("page/icon.svg");
/// The page's Content-Security-Policy: its own script and style only, never framed.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                            connect-src 'self'; img-src 'self'; frame-ancestors 'none'; \
                            base-uri 'none'; form-action 'none'";

/// Why the texts cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KioskError {
    /// A resource file does not parse, or defines a message twice.
    #[error("gate screen texts, {lang}: {why}")]
    Resource {
        /// The language tag.
        lang: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A message is missing in a language.
    #[error("gate screen texts, {lang}: no message `{id}`")]
    Missing {
        /// The language tag.
        lang: &'static str,
        /// The message id.
        id: String,
    },
    /// A message did not format cleanly (an unknown variable, a reference to nothing).
    #[error("gate screen texts, {lang}: message `{id}`: {why}")]
    Format {
        /// The language tag.
        lang: &'static str,
        /// The message id.
        id: String,
        /// The formatter's complaint.
        why: String,
    },
}

/// How a screen should feel: the page colours it (and says it in words, never by colour alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// Go ahead (gate open, cleared, registered).
    Go,
    /// An instruction.
    Info,
    /// A question for the traveller (the declaration).
    Ask,
    /// Please wait (inspection, registration in progress).
    Wait,
    /// Stop: see or wait for an officer, channel closed.
    Stop,
}

/// One message and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// The Fluent message id.
    pub id: Cow<'static, str>,
    /// Numeric arguments (`$age`, …).
    pub args: &'static [(&'static str, u32)],
}

impl Msg {
    const fn new(id: &'static str) -> Msg {
        Msg {
            id: Cow::Borrowed(id),
            args: &[],
        }
    }
}

/// What a screen says, before translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenText {
    /// The main line.
    pub headline: Msg,
    /// A second line (why, what next).
    pub detail: Option<Msg>,
    /// Its tone.
    pub tone: Tone,
    /// Whether the registration declaration's Agree and Not now go with it.
    pub declaration: bool,
}

const AGE: &[(&str, u32)] = &[("age", MIN_AGE)];
const MINOR: &[(&str, u32)] = &[("from", MIN_AGE), ("to", ADULT_AGE - 1)];

/// The words for a screen code from the procedure (or a document or eligibility code it
/// passes on); `None` for a code this module does not know. `face_scan`: whether the lane
/// offers face scan now (the ready screen says so).
pub fn screen_text(code: &str, face_scan: bool) -> Option<ScreenText> {
    let text = |headline: Msg, detail: Option<Msg>, tone| ScreenText {
        headline,
        detail,
        tone,
        declaration: false,
    };
    let wait_officer = |why| text(Msg::new("wait-officer"), Some(Msg::new(why)), Tone::Stop);
    Some(match code {
        "ready" if face_scan => text(Msg::new("ready-face"), None, Tone::Info),
        "ready" => text(Msg::new("ready-card"), None, Tone::Info),
        "lane_closed" | "gate1_locked" => text(Msg::new("channel-closed"), None, Tone::Stop),
        "card_only" => text(Msg::new("card-only"), None, Tone::Info),
        "one_at_a_time" => text(Msg::new("one-at-a-time"), None, Tone::Info),
        // PAD has not seen enough bona fide frames: neutral words, never "attack".
        "look_at_camera" => text(Msg::new("look-at-camera"), None, Tone::Info),
        "face_quality" => text(Msg::new("face-prompt"), None, Tone::Info),
        "not_recognised" => text(Msg::new("not-recognised"), None, Tone::Info),
        // A card outside its validity: from the card path or the eligibility rules alike.
        "document_not_yet_valid" | "document_expired" => text(
            Msg::new("see-officer"),
            Some(Msg {
                id: Cow::Owned(format!("why-{}", code.replace('_', "-"))),
                args: &[],
            }),
            Tone::Stop,
        ),
        "minor_needs_guardian" => text(
            Msg {
                id: Cow::Borrowed("minor-needs-guardian"),
                args: MINOR,
            },
            Some(Msg::new("card-continues")),
            Tone::Info,
        ),
        "declaration" => ScreenText {
            headline: Msg::new("declaration-title"),
            detail: Some(Msg::new("declaration-text")),
            tone: Tone::Ask,
            declaration: true,
        },
        "checking" => text(Msg::new("checking"), None, Tone::Wait),
        "registration_unavailable" => text(
            Msg::new("registration-unavailable"),
            Some(Msg::new("card-continues")),
            Tone::Info,
        ),
        "registration_pending" => text(
            Msg::new("registration-pending"),
            Some(Msg::new("card-continues")),
            Tone::Info,
        ),
        "endorsement_not_accepted" => text(
            Msg::new("see-officer"),
            Some(Msg::new("why-endorsement-not-accepted")),
            Tone::Stop,
        ),
        // Not offered the registration: why, and that the card passage goes on.
        c if c.starts_with("not_offered:") => {
            let why = Ineligible::ALL
                .into_iter()
                .find(|r| Some(r.code()) == c.strip_prefix("not_offered:"))?;
            text(
                Msg::new("cannot-register"),
                Some(Msg {
                    id: Cow::Owned(format!("why-{}", why.code().replace('_', "-"))),
                    args: if why == Ineligible::UnderAge {
                        AGE
                    } else {
                        &[]
                    },
                }),
                Tone::Info,
            )
        }
        "registering" => text(Msg::new("registering"), None, Tone::Wait),
        // Gate 1 opens at once: the outcome stays on screen while the traveller walks in.
        "registered" => text(Msg::new("registered"), Some(Msg::new("welcome")), Tone::Go),
        "registration_failed" => text(
            Msg::new("registration-failed"),
            Some(Msg::new("card-continues")),
            Tone::Info,
        ),
        "welcome" => text(Msg::new("welcome"), None, Tone::Go),
        "biometrics" => text(Msg::new("biometrics"), None, Tone::Info),
        "fingerprint_retry" => text(Msg::new("fingerprint-retry"), None, Tone::Info),
        "inspecting" => text(Msg::new("inspecting"), None, Tone::Wait),
        "cleared" => text(Msg::new("cleared"), None, Tone::Go),
        "multiple_faces" | "tailgating" => wait_officer("why-hold-one-at-a-time"),
        "gate_fault" | "gate_failed" => wait_officer("why-hold-out-of-service"),
        // Outside gate 1 (go elsewhere) and inside the channel (an officer comes) alike.
        "records_unwritable" => text(
            Msg::new("see-officer"),
            Some(Msg::new("why-hold-out-of-service")),
            Tone::Stop,
        ),
        "face_mismatch"
        | "fingerprint_failed"
        | "authority_not_answering"
        | "authority_refer"
        | "biometrics_timeout"
        | "supervisor" => wait_officer("why-hold-check"),
        c if DocumentError::DOCUMENT_FAULT_CODES.contains(&c) => text(
            Msg::new("document-unreadable"),
            Some(Msg::new("try-again-or-officer")),
            Tone::Stop,
        ),
        c => {
            let why = Ineligible::ALL.into_iter().find(|r| r.code() == c)?;
            text(
                Msg::new("face-unavailable"),
                Some(Msg {
                    id: Cow::Owned(format!("why-{}", why.code().replace('_', "-"))),
                    args: if why == Ineligible::UnderAge {
                        AGE
                    } else {
                        &[]
                    },
                }),
                Tone::Stop,
            )
        }
    })
}

/// A language the traveller can choose, named in itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanguageChoice {
    /// BCP 47 tag (`zh-Hant`).
    pub tag: &'static str,
    /// Its own name (`繁體中文`).
    pub name: String,
}

/// A button on the screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KioskAction {
    /// `agree` or `decline`.
    pub id: &'static str,
    /// Its label.
    pub label: String,
    /// Where the page posts the tap.
    pub path: &'static str,
}

/// What `GET /kiosk/screen` answers: one screen in one language, ready to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KioskView {
    /// The language it is in.
    pub lang: &'static str,
    /// Which gate's screen.
    pub gate: u8,
    /// The procedure's code (`declaration`, `welcome`, …), for tests and the page's styling.
    pub code: String,
    /// Its tone.
    pub tone: Tone,
    /// The service's name, shown at the top.
    pub title: String,
    /// The main line.
    pub headline: String,
    /// A second line, if any.
    pub detail: Option<String>,
    /// Buttons (Agree, Not now) when the declaration is shown.
    pub actions: Vec<KioskAction>,
    /// The reminder to carry the physical document (seed 000).
    pub reminder: String,
    /// "Language", in this language.
    pub choose_language: String,
    /// The languages offered.
    pub languages: Vec<LanguageChoice>,
}

/// The translations, loaded once.
pub struct Texts {
    bundles: Vec<(&'static str, FluentBundle<FluentResource>)>,
}

impl std::fmt::Debug for Texts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tags: Vec<&str> = self.bundles.iter().map(|(t, _)| *t).collect();
        f.debug_struct("Texts").field("languages", &tags).finish()
    }
}

impl Texts {
    /// Parses every language's resource file.
    pub fn load() -> Result<Texts, KioskError> {
        let mut bundles = Vec::with_capacity(LANGUAGES.len());
        for (tag, source) in LANGUAGES {
            let bad = |why: String| KioskError::Resource { lang: tag, why };
            let resource = FluentResource::try_new(source.to_string())
                .map_err(|(_, errors)| bad(format!("{errors:?}")))?;
            let id: LanguageIdentifier = tag.parse().map_err(|e| bad(format!("{e}")))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Plain text on a screen: no Unicode isolation marks around `{ $age }`.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|errors| bad(format!("{errors:?}")))?;
            bundles.push((tag, bundle));
        }
        Ok(Texts { bundles })
    }

    /// The language for `requested` (a tag, case-insensitive), or the default.
    pub fn language(&self, requested: Option<&str>) -> &'static str {
        requested
            .and_then(|r| {
                self.bundles
                    .iter()
                    .find(|(tag, _)| tag.eq_ignore_ascii_case(r))
            })
            .map_or(LANGUAGES[0].0, |(tag, _)| *tag)
    }

    /// One message in one language.
    pub fn message(&self, lang: &str, msg: &Msg) -> Result<String, KioskError> {
        let (tag, bundle) = self
            .bundles
            .iter()
            .find(|(tag, _)| *tag == lang)
            .unwrap_or(&self.bundles[0]);
        let missing = || KioskError::Missing {
            lang: tag,
            id: msg.id.to_string(),
        };
        let pattern = bundle
            .get_message(&msg.id)
            .and_then(|m| m.value())
            .ok_or_else(missing)?;
        let mut args = FluentArgs::new();
        for (name, value) in msg.args {
            args.set(*name, *value);
        }
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, Some(&args), &mut errors);
        if !errors.is_empty() {
            return Err(KioskError::Format {
                lang: tag,
                id: msg.id.to_string(),
                why: format!("{errors:?}"),
            });
        }
        Ok(text.into_owned())
    }

    /// The message, or its id if it cannot be had (never fails a screen; the tests make sure
    /// it does not happen).
    fn say(&self, lang: &str, msg: &Msg) -> String {
        self.message(lang, msg).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Gate screen text missing.");
            msg.id.to_string()
        })
    }

    /// The screen at `gate` in `lang`: what the procedure last showed there (`None`: nothing
    /// yet), in words.
    pub fn render(
        &self,
        lang: &'static str,
        gate: GateId,
        screen: Option<&Screen>,
        face_scan: bool,
    ) -> KioskView {
        let code = match (screen, gate) {
            (Some(s), _) => s.code,
            (None, GateId::One) => "ready",
            (None, _) => "",
        };
        let text = screen_text(code, face_scan).unwrap_or_else(|| {
            if !code.is_empty() {
                tracing::warn!(
                    code,
                    "Gate screen code without a text; showing the officer line."
                );
            }
            ScreenText {
                headline: if code.is_empty() {
                    Msg::new("service-name")
                } else {
                    Msg::new("see-officer")
                },
                detail: None,
                tone: if code.is_empty() {
                    Tone::Info
                } else {
                    Tone::Stop
                },
                declaration: false,
            }
        });
        let actions = if text.declaration {
            vec![
                KioskAction {
                    id: "agree",
                    label: self.say(lang, &Msg::new("agree")),
                    path: "/lane/screen/agree",
                },
                KioskAction {
                    id: "decline",
                    label: self.say(lang, &Msg::new("not-now")),
                    path: "/lane/screen/decline",
                },
            ]
        } else {
            Vec::new()
        };
        KioskView {
            lang,
            gate: gate.number(),
            code: code.to_string(),
            tone: text.tone,
            title: self.say(lang, &Msg::new("service-name")),
            headline: self.say(lang, &text.headline),
            detail: text.detail.as_ref().map(|d| self.say(lang, d)),
            actions,
            reminder: self.say(lang, &Msg::new("reminder")),
            choose_language: self.say(lang, &Msg::new("choose-language")),
            languages: self
                .bundles
                .iter()
                .map(|(tag, _)| LanguageChoice {
                    tag,
                    name: self.say(tag, &Msg::new("lang-name")),
                })
                .collect(),
        }
    }
}
