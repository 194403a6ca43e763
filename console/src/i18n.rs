//! The console's words in English and Traditional Chinese (Project Fluent: one `.ftl` resource
//! per language under `console/locales/`, compiled into both the server and the browser code so
//! a page renders and hydrates in the same words).
//!
//! The language is the user's choice, kept in the `clearway_lang` cookie (`/lang/{tag}` sets
//! it); the server renders `<html lang>` from it and the browser reads it back from there.
//! [`Lang::current`] gives the page's language; [`tr`] one message, always with a literal id
//! or an id built from a code ([`crate::dto::code_id`]) so the completeness
//! test finds it. Codes and `data-*`
//! attributes never change with the language (tests and scripts read those).

use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// The cookie that keeps the user's language.
pub const LANG_COOKIE: &str = "clearway_lang";

/// A language of the console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// Traditional Chinese (Macao).
    ZhHant,
}

impl Lang {
    /// Every language, the default first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhHant];

    /// The BCP 47 tag (`en`, `zh-Hant`).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhHant => "zh-Hant",
        }
    }

    /// The language's own name, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhHant => "繁體中文",
        }
    }

    /// The language of a tag (case-insensitive); `None` for any other.
    pub fn parse(tag: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(tag.trim()))
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../locales/en/console.ftl"),
            Lang::ZhHant => include_str!("../locales/zh-Hant/console.ftl"),
        }
    }

    /// The page's language: from the request's cookie on the server, from `<html lang>` in the
    /// browser (which the server wrote), English if neither says.
    pub fn current() -> Lang {
        #[cfg(feature = "ssr")]
        {
            leptos::prelude::use_context::<axum::http::request::Parts>()
                .and_then(|p| crate::server::cookie(&p.headers, LANG_COOKIE))
                .and_then(|t| Lang::parse(&t))
                .unwrap_or_default()
        }
        #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
        {
            leptos::prelude::document()
                .document_element()
                .and_then(|e| e.get_attribute("lang"))
                .and_then(|t| Lang::parse(&t))
                .unwrap_or_default()
        }
        #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
        {
            Lang::En
        }
    }
}

type Bundle = FluentBundle<FluentResource>;

fn bundles() -> &'static Vec<(Lang, Bundle)> {
    static BUNDLES: OnceLock<Vec<(Lang, Bundle)>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        Lang::ALL
            .into_iter()
            .map(|lang| {
                // The resources are part of the build and checked by the tests; a broken entry
                // is left out (its messages then fall back to English, then to their id).
                let resource = FluentResource::try_new(lang.source().to_string())
                    .unwrap_or_else(|(partial, _)| partial);
                let id = lang.tag().parse().unwrap_or_default();
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                bundle.set_use_isolating(false);
                let _ = bundle.add_resource(resource);
                (lang, bundle)
            })
            .collect()
    })
}

fn format(lang: Lang, id: &str, args: Option<&FluentArgs>) -> Option<String> {
    let (_, bundle) = bundles().iter().find(|(l, _)| *l == lang)?;
    let pattern = bundle.get_message(id)?.value()?;
    let mut errors = Vec::new();
    let text = bundle.format_pattern(pattern, args, &mut errors);
    errors.is_empty().then(|| text.into_owned())
}

/// Message `id` in `lang` (English if `lang` lacks it, the id itself if English does too; the
/// tests make sure neither happens).
pub fn tr(lang: Lang, id: &str) -> String {
    format(lang, id, None)
        .or_else(|| format(Lang::En, id, None))
        .unwrap_or_else(|| id.to_string())
}

/// Message `id` in `lang` with its arguments.
pub fn tr_with(lang: Lang, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    let mut a = FluentArgs::new();
    for (k, v) in args {
        a.set(*k, v.clone());
    }
    format(lang, id, Some(&a))
        .or_else(|| format(Lang::En, id, Some(&a)))
        .unwrap_or_else(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluent_syntax::ast;

    fn ids(lang: Lang) -> std::collections::BTreeSet<String> {
        let resource = FluentResource::try_new(lang.source().to_string())
            .unwrap_or_else(|(_, e)| panic!("{}: {e:?}", lang.tag()));
        resource
            .entries()
            .filter_map(|e| match e {
                ast::Entry::Message(m) => Some(m.id.name.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Every message id the code asks for: string literals passed to `tr(lang, ` and
    /// `tr_with(lang, ` (the pages' one way of asking), and the ids built from codes (`alarm-`,
    /// `step-`, …) listed in [`crate::dto::message_ids_from_codes`].
    fn used() -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("source");
                for marker in ["tr(lang, \"", "tr_with(lang, \"", "(Lang::current(), \""] {
                    for part in text.split(marker).skip(1) {
                        if let Some(id) = part.split('"').next()
                            && !id.is_empty()
                            && id
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        {
                            out.insert(id.to_string());
                        }
                    }
                }
            }
        }
        for id in crate::dto::message_ids_from_codes() {
            out.insert(id);
        }
        out
    }

    #[test]
    fn every_message_is_in_both_languages_and_every_used_id_exists() {
        let en = ids(Lang::En);
        let zh = ids(Lang::ZhHant);
        let only_en: Vec<_> = en.difference(&zh).collect();
        let only_zh: Vec<_> = zh.difference(&en).collect();
        assert!(only_en.is_empty(), "missing in zh-Hant: {only_en:?}");
        assert!(only_zh.is_empty(), "missing in en: {only_zh:?}");
        let used = used();
        assert!(used.len() > 50, "the scan found the ids in use: {used:?}");
        let missing: Vec<_> = used.into_iter().filter(|id| !en.contains(id)).collect();
        assert!(missing.is_empty(), "used but not defined: {missing:?}");
    }

    #[test]
    fn a_language_is_chosen_by_its_tag_and_falls_back_to_english() {
        assert_eq!(Lang::parse("zh-hant"), Some(Lang::ZhHant));
        assert_eq!(Lang::parse("EN"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(tr(Lang::ZhHant, "nav-ports"), "口岸");
        assert_eq!(tr(Lang::En, "nav-ports"), "Ports");
        assert_eq!(tr(Lang::ZhHant, "no-such-message"), "no-such-message");
    }
}
