//! `/account`: the signed-in user's own account: change the password (required first when an
//! administrator set it), and the live sessions, each revocable.

use leptos::prelude::*;
use leptos_meta::Title;

use super::loading;
use crate::api::{ChangePassword, RevokeSession, my_sessions};
use crate::app::{ErrorBox, ViewerResource, action_result};
use crate::dto::{ApiError, SessionView, Viewer};
use crate::i18n::{Lang, tr};

/// The account page.
#[component]
pub fn AccountPage() -> impl IntoView {
    let viewer = expect_context::<ViewerResource>();
    let lang = Lang::current();
    view! {
        <Title text=format!("{} · Clearway", tr(lang, "nav-account")) />
        <h1>{tr(lang, "nav-account")}</h1>
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match viewer.await {
                    Ok(Some(v)) => view! { <Account viewer=v /> }.into_any(),
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(None) => {
                        view! {
                            <ErrorBox error=ApiError::new(401, "unauthenticated", "sign in first") />
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn Account(viewer: Viewer) -> impl IntoView {
    let lang = Lang::current();
    let change = ServerAction::<ChangePassword>::new();
    let must_change = viewer.must_change;
    let csrf = viewer.csrf.clone();
    let sessions_csrf = viewer.csrf;
    view! {
        {must_change.then(|| view! {
            <p class="banner-break" data-test="must-change">{tr(lang, "account-must-change")}</p>
        })}
        <h2>{tr(lang, "account-password")}</h2>
        <ActionForm action=change>
            <input type="hidden" name="csrf" value=csrf />
            <label>
                {tr(lang, "account-current")}
                " "
                <input type="password" name="current" required autocomplete="current-password" data-test="password-current" />
            </label>
            <label>
                {tr(lang, "account-new")}
                " "
                <input type="password" name="new" required minlength="12" maxlength="256" autocomplete="new-password" data-test="password-new" />
            </label>
            <label>
                {tr(lang, "account-repeat")}
                " "
                <input type="password" name="repeat" required minlength="12" maxlength="256" autocomplete="new-password" data-test="password-repeat" />
            </label>
            <button type="submit" data-test="password-submit">{tr(lang, "account-change")}</button>
        </ActionForm>
        {move || action_result(
            change.value().get(),
            change.pending().get(),
            "password-result",
            |()| tr(Lang::current(), "account-changed"),
        )}
        {(!must_change).then(|| view! { <Sessions csrf=sessions_csrf.clone() /> })}
    }
}

#[component]
fn Sessions(csrf: String) -> impl IntoView {
    let lang = Lang::current();
    let revoke = ServerAction::<RevokeSession>::new();
    let sessions = Resource::new(move || revoke.version().get(), |_| my_sessions());
    let row = move |s: SessionView| {
        let csrf = csrf.clone();
        view! {
            <tr data-test="session-row" data-current=s.current.to_string()>
                <td><code>{s.id.clone()}</code></td>
                <td>{s.signed_in.clone()}</td>
                <td>{s.last_seen.clone()}</td>
                <td>{s.client.clone()}</td>
                <td>
                    {if s.current {
                        tr(lang, "account-this-session").into_any()
                    } else {
                        view! {
                            <ActionForm action=revoke>
                                <input type="hidden" name="csrf" value=csrf />
                                <input type="hidden" name="id" value=s.id.clone() />
                                <button type="submit" data-test="session-revoke">{tr(lang, "account-revoke")}</button>
                            </ActionForm>
                        }
                            .into_any()
                    }}
                </td>
            </tr>
        }
    };
    view! {
        <h2>{tr(lang, "account-sessions")}</h2>
        <Suspense fallback=loading>
            {move || {
                let row = row.clone();
                Suspend::new(async move {
                    match sessions.await {
                        Ok(list) => view! {
                            <table data-test="sessions"><tbody>
                                <tr>
                                    <th>"id"</th>
                                    <th>{tr(lang, "account-signed-in")}</th>
                                    <th>{tr(lang, "account-last-seen")}</th>
                                    <th>{tr(lang, "account-client")}</th>
                                    <th></th>
                                </tr>
                                {list.into_iter().map(row).collect_view()}
                            </tbody></table>
                        }
                            .into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
