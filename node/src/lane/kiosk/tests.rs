//! The gate screens' words: every message in every language, every screen code with words.

use std::collections::BTreeSet;

use fluent_syntax::ast::Entry;

use super::*;

/// The message ids a resource file defines (none may be empty).
fn ids(tag: &str, source: &'static str) -> BTreeSet<&'static str> {
    let resource = fluent_syntax::parser::parse(source)
        .unwrap_or_else(|(_, errors)| panic!("{tag}: {errors:?}"));
    let mut ids = BTreeSet::new();
    for entry in resource.body {
        match entry {
            Entry::Message(m) => {
                assert!(m.value.is_some(), "{tag}: `{}` has no value", m.id.name);
                assert!(ids.insert(m.id.name), "{tag}: `{}` twice", m.id.name);
            }
            Entry::Junk { content } => panic!("{tag}: cannot parse {content:?}"),
            _ => {}
        }
    }
    ids
}

#[test]
fn every_language_has_every_message() {
    let (first, source) = LANGUAGES[0];
    let want = ids(first, source);
    assert!(want.len() > 40, "{} messages", want.len());
    for (tag, source) in LANGUAGES {
        let got = ids(tag, source);
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{tag}: missing {missing:?}, not in {first}: {extra:?}"
        );
    }
    // The four languages the issue asks for, each named in itself.
    let texts = Texts::load().expect("texts load");
    let names: Vec<String> = LANGUAGES
        .iter()
        .map(|(tag, _)| texts.message(tag, &Msg::new("lang-name")).unwrap())
        .collect();
    assert_eq!(names, ["繁體中文", "简体中文", "Português", "English"]);
}

/// Every code the procedure shows (its literals; the eligibility reasons and the document
/// faults it passes on), and the ones only the runtime knows.
fn every_code() -> Vec<String> {
    let literal = [
        "ready",
        "lane_closed",
        "gate1_locked",
        "card_only",
        "one_at_a_time",
        "look_at_camera",
        "face_quality",
        "not_recognised",
        "minor_needs_guardian",
        "declaration",
        "checking",
        "registering",
        "registered",
        "registration_failed",
        "registration_unavailable",
        "registration_pending",
        "endorsement_not_accepted",
        "welcome",
        "biometrics",
        "fingerprint_retry",
        "inspecting",
        "cleared",
        "multiple_faces",
        "tailgating",
        "gate_fault",
        "gate_failed",
        "face_mismatch",
        "fingerprint_failed",
        "authority_not_answering",
        "authority_refer",
        "biometrics_timeout",
        "supervisor",
        "records_unwritable",
    ];
    literal
        .into_iter()
        .chain(Ineligible::ALL.iter().map(|r| r.code()))
        .chain(
            Ineligible::ALL
                .iter()
                .map(|r| crate::lane::procedure::not_offered_code(*r)),
        )
        .chain(DocumentError::DOCUMENT_FAULT_CODES)
        .map(str::to_string)
        .collect()
}

#[test]
fn every_screen_code_has_words_in_every_language() {
    let texts = Texts::load().expect("texts load");
    let mut failures = Vec::new();
    for code in every_code() {
        for face_scan in [true, false] {
            let Some(text) = screen_text(&code, face_scan) else {
                failures.push(format!("{code}: no text"));
                continue;
            };
            for (tag, _) in LANGUAGES {
                for msg in std::iter::once(&text.headline).chain(text.detail.as_ref()) {
                    match texts.message(tag, msg) {
                        Ok(s) if s.trim().is_empty() => {
                            failures.push(format!("{code} {tag}: `{}` is empty", msg.id))
                        }
                        Ok(_) => {}
                        Err(e) => failures.push(format!("{code}: {e}")),
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(screen_text("no_such_code", true), None);
}

#[test]
fn the_declaration_offers_agree_and_not_now_in_the_travellers_language() {
    let texts = Texts::load().expect("texts load");
    let screen = Screen {
        gate: GateId::One,
        code: "declaration",
        text: "(English, for the log)".into(),
    };
    let mut labels = BTreeSet::new();
    for (tag, _) in LANGUAGES {
        let view = texts.render(texts.language(Some(tag)), GateId::One, Some(&screen), true);
        assert_eq!(view.lang, tag);
        assert_eq!(view.tone, Tone::Ask);
        let ids: Vec<&str> = view.actions.iter().map(|a| a.id).collect();
        assert_eq!(ids, ["agree", "decline"], "{tag}");
        assert_eq!(view.actions[0].path, "/lane/screen/agree");
        assert!(
            view.detail.as_deref().is_some_and(|d| d.len() > 40),
            "{tag}"
        );
        assert_eq!(view.languages.len(), 4);
        labels.insert(view.actions[0].label.clone());
    }
    // 同意 is the same word in both Chinese scripts.
    assert_eq!(
        labels,
        BTreeSet::from(["Agree".into(), "Concordo".into(), "同意".to_string()])
    );
    // No other screen has buttons.
    let welcome = Screen {
        gate: GateId::One,
        code: "welcome",
        text: String::new(),
    };
    let view = texts.render("en", GateId::One, Some(&welcome), true);
    assert!(view.actions.is_empty());
    assert_eq!(view.tone, Tone::Go);
}

#[test]
fn languages_are_chosen_by_tag_with_the_default_for_anything_else() {
    let texts = Texts::load().expect("texts load");
    assert_eq!(texts.language(Some("pt")), "pt");
    assert_eq!(texts.language(Some("ZH-hans")), "zh-Hans");
    assert_eq!(texts.language(Some("fr")), "zh-Hant");
    assert_eq!(texts.language(Some("<script>")), "zh-Hant");
    assert_eq!(texts.language(None), "zh-Hant");
}

#[test]
fn arguments_are_filled_in_every_language() {
    let texts = Texts::load().expect("texts load");
    let under_age = screen_text("under_age", true).unwrap().detail.unwrap();
    let minor = screen_text("minor_needs_guardian", true).unwrap().headline;
    for (tag, _) in LANGUAGES {
        let s = texts.message(tag, &under_age).unwrap();
        assert!(s.contains("14"), "{tag}: {s}");
        let s = texts.message(tag, &minor).unwrap();
        assert!(s.contains("14") && s.contains("17"), "{tag}: {s}");
    }
}

#[test]
fn nothing_shown_yet_is_the_ready_screen_at_gate_1_and_the_service_name_at_gate_2() {
    let texts = Texts::load().expect("texts load");
    let one = texts.render("en", GateId::One, None, true);
    assert_eq!(one.code, "ready");
    assert!(
        one.headline.contains("sunglasses, mask and hat"),
        "{}",
        one.headline
    );
    assert!(one.reminder.contains("physical travel document"));
    let card = texts.render("en", GateId::One, None, false);
    assert_eq!(card.headline, "Please present your travel document.");
    let two = texts.render("pt", GateId::Two, None, true);
    assert_eq!(two.headline, "Passagem Fronteiriça Inteligente");
}
