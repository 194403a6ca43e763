//! The pages, one module per area. Stable `data-test` attributes mark every input, button,
//! lane cell, gate state, acknowledgement marker and the audit chain's status for the browser
//! tests.

mod audit;
mod desk;
mod lane;
mod login;
mod ports;
mod rollout;
mod users;

pub use audit::AuditPage;
pub use desk::DeskPage;
pub use lane::LanePage;
pub use login::LoginPage;
pub use ports::{HallPage, OverviewPage, PortPage};
pub use rollout::RolloutPage;
pub use users::UsersPage;

use leptos::prelude::*;

/// What a page shows while its data loads (only seen after client-side navigation).
pub fn loading() -> impl IntoView {
    view! { <p class="muted">"Loading…"</p> }
}
