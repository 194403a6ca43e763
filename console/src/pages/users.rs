//! `/users`: console accounts (port admins): list; create with a generated password shown
//! once; unlock, disable, enable, reset the password (shown once, to be changed at the next
//! sign-in), end the sessions of, or delete an account, each with a reason recorded in the
//! console's audit log.

use leptos::prelude::*;
use leptos_meta::Title;

use super::loading;
use crate::api::{CreateUser, ManageUser, list_users};
use crate::app::{ErrorBox, ViewerResource, action_result};
use crate::dto::{ApiError, CreatedUser, ManagedUser, Role, USER_ACTIONS, UserView, Viewer};
use crate::i18n::{Lang, tr, tr_with};

/// The users page.
#[component]
pub fn UsersPage() -> impl IntoView {
    let manage = ServerAction::<ManageUser>::new();
    let users = Resource::new(move || manage.version().get(), |_| list_users());
    let viewer = expect_context::<ViewerResource>();
    let lang = Lang::current();
    view! {
        <Title text=format!("{} · Clearway", tr(lang, "nav-users")) />
        <h1>{tr(lang, "nav-users")}</h1>
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match (viewer.await, users.await) {
                    (_, Err(e)) => view! { <ErrorBox error=e /> }.into_any(),
                    (Ok(Some(v)), Ok(list)) => {
                        view! { <Users list=list viewer=v manage=manage /> }.into_any()
                    }
                    _ => {
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
fn Users(list: Vec<UserView>, viewer: Viewer, manage: ServerAction<ManageUser>) -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let lang = Lang::current();
    let names: Vec<String> = list.iter().map(|u| u.name.clone()).collect();
    let manage_csrf = viewer.csrf.clone();
    view! {
        <table data-test="users"><tbody>
            <tr>
                <th>{tr(lang, "users-name")}</th>
                <th>{tr(lang, "users-role")}</th>
                <th>{tr(lang, "nav-ports")}</th>
                <th>{tr(lang, "users-failed")}</th>
                <th>{tr(lang, "users-locked")}</th>
                <th>{tr(lang, "users-state")}</th>
            </tr>
            {list
                .into_iter()
                .map(|u| {
                    view! {
                        <tr
                            data-test="user-row"
                            data-user=u.name.clone()
                            data-role=u.role.as_str()
                            data-disabled=u.disabled.to_string()
                            data-must-change=u.must_change.to_string()
                        >
                            <td>{u.name.clone()}</td>
                            <td>{tr(lang, &crate::dto::code_id("role", u.role.as_str()))}</td>
                            <td>{u.ports.join(", ")}</td>
                            <td>{u.failed_logins}</td>
                            <td data-test="locked-until">{u.locked_until.clone().unwrap_or_default()}</td>
                            <td>
                                {match (u.disabled, u.must_change) {
                                    (true, _) => tr(lang, "users-disabled"),
                                    (false, true) => tr(lang, "users-must-change"),
                                    (false, false) => tr(lang, "users-active"),
                                }}
                            </td>
                        </tr>
                    }
                })
                .collect_view()}
        </tbody></table>
        <h2>{tr(lang, "users-manage")}</h2>
        <ActionForm action=manage>
            <input type="hidden" name="csrf" value=manage_csrf />
            <label>
                {tr(lang, "users-name")}
                " "
                <select name="name" data-test="manage-name">
                    {names
                        .into_iter()
                        .map(|n| view! { <option value=n.clone()>{n.clone()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                {tr(lang, "users-action")}
                " "
                <select name="action" data-test="manage-action">
                    {USER_ACTIONS
                        .into_iter()
                        .map(|a| view! { <option value=a>{tr(lang, &format!("users-action-{a}"))}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                {tr(lang, "reason-short")}
                " "
                <input type="text" name="reason" required maxlength="500" data-test="manage-reason" />
            </label>
            <button type="submit" data-test="manage-submit">{tr(lang, "users-apply")}</button>
        </ActionForm>
        {move || action_result(
            manage.value().get(),
            manage.pending().get(),
            "manage-result",
            |m: ManagedUser| view! {
                {format!("{}: {}", m.name, tr(Lang::current(), &format!("users-action-{}", m.action)))}
                " "
                {m.generated_password.map(|p| view! {
                    {tr(Lang::current(), "users-password-once")} " "
                    <code data-test="reset-password">{p}</code>
                })}
            },
        )}
        <h2>{tr(lang, "users-create")}</h2>
        <ActionForm action=create>
            <input type="hidden" name="csrf" value=viewer.csrf />
            <label>
                {tr(lang, "users-name-input")}
                " "
                <input type="text" name="name" required maxlength="64" data-test="user-name" />
            </label>
            <label>
                {tr(lang, "users-role")}
                " "
                <select name="role" data-test="user-role">
                    {Role::ALL
                        .into_iter()
                        .map(|r| view! { <option value=r.as_str()>{tr(lang, &crate::dto::code_id("role", r.as_str()))}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                {tr(lang, "users-ports-input")}
                " "
                <input type="text" name="ports" data-test="user-ports" />
            </label>
            <label>
                {tr(lang, "users-password-input")}
                " "
                <input type="password" name="password" autocomplete="new-password" data-test="user-password" />
            </label>
            <label>
                {tr(lang, "reason-short")}
                " "
                <input type="text" name="reason" required maxlength="500" data-test="user-reason" />
            </label>
            <button type="submit" data-test="user-submit">"Create user"</button>
        </ActionForm>
        {move || action_result(
            create.value().get(),
            create.pending().get(),
            "user-result",
            |u: CreatedUser| view! {
                {tr_with(Lang::current(), "users-created", &[("name", u.name.clone().into())])}
                " "
                {u.generated_password.map(|p| view! {
                    {tr(Lang::current(), "users-password-once")} " "
                    <code data-test="generated-password">{p}</code>
                })}
            },
        )}
    }
}
