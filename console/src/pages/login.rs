//! `/login`: the sign-in form (a plain HTML form posting to `/auth/login`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::loading;
use crate::api::fetch_login;
use crate::app::ErrorBox;
use crate::i18n::{tr, tr_with};

/// The sign-in page. `?error=<code>` and `?expired=1` explain why the user is here.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let form = Resource::new(|| (), |_| fetch_login());
    let lang = crate::i18n::Lang::current();
    view! {
        <Title text="Sign in · Clearway console" />
        <h1>{crate::i18n::tr(lang, "login-title")}</h1>
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match form.await {
                    Ok(f) => {
                        let (error, expired) = query
                            .with_untracked(|q| (q.get("error"), q.get("expired").is_some()));
                        let message = match (error.as_deref(), expired) {
                            (Some("invalid_credentials"), _) => {
                                Some(("invalid_credentials", tr(lang, "login-wrong")))
                            }
                            (Some("locked_out"), _) => Some((
                                "locked_out",
                                tr_with(
                                    lang,
                                    "login-paused",
                                    &[
                                        ("after", f.lockout_after.into()),
                                        ("minutes", f.lockout_minutes.into()),
                                    ],
                                ),
                            )),
                            (Some("account_disabled"), _) => {
                                Some(("account_disabled", tr(lang, "login-disabled")))
                            }
                            (Some(_), _) => Some(("error", tr(lang, "login-failed"))),
                            (None, true) => Some(("session_expired", tr(lang, "login-expired"))),
                            (None, false) => None,
                        };
                        view! {
                            {message
                                .map(|(code, text)| {
                                    view! {
                                        <p class="error" data-test="login-error" data-code=code>
                                            {text}
                                        </p>
                                    }
                                })}
                            {f
                                .viewer
                                .as_ref()
                                .map(|v| {
                                    view! {
                                        <p class="muted" data-test="signed-in-as">
                                            {format!("Signed in as {}. ", v.name)}
                                            <a href="/">"Continue"</a>
                                        </p>
                                    }
                                })}
                            <form method="post" action="/auth/login" data-test="login-form">
                                <input type="hidden" name="csrf" value=f.csrf.clone() />
                                <label>
                                    {crate::i18n::tr(lang, "login-name")}
                                    " "
                                    <input
                                        type="text"
                                        name="name"
                                        id="login-name"
                                        data-test="login-name"
                                        autocomplete="username"
                                        required
                                    />
                                </label>
                                <label>
                                    {crate::i18n::tr(lang, "login-password")}
                                    " "
                                    <input
                                        type="password"
                                        name="password"
                                        id="login-password"
                                        data-test="login-password"
                                        autocomplete="current-password"
                                        required
                                    />
                                </label>
                                <button type="submit" data-test="login-submit">
                                    {crate::i18n::tr(lang, "login-submit")}
                                </button>
                            </form>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
