//! The pages, one module per area. Stable `data-test` attributes mark every input, button,
//! lane cell, gate state, acknowledgement marker and the audit chain's status for the browser
//! tests:
//!
//! * every page: `whoami` (`data-role`), `logout`, `error` (`data-code`, `data-status`),
//!   `login-link`, `not-found`, `live-link` (`data-link` = `connecting|live|lost`);
//!   action results `<form>-result` with `data-result` = `sending|ok|error`.
//! * login: `login-form`, `login-name`, `login-password`, `login-submit`, `login-error`
//!   (`data-code` = `invalid_credentials|locked_out|session_expired`), `signed-in-as`.
//! * ports: `ports`, `port-row` (`data-port`), `lanes-up`, `lanes-down`, `clearances`,
//!   `alarms`, `port-status` (`data-reachable`); port page `port-name`, `hall` (`data-hall`),
//!   `members`, `node-row` (`data-node`, `data-membership`, `data-reachable`, `data-applied`,
//!   `data-lag`).
//! * hall: `hall-name`, `lane-grid`, `lane-cell` (`data-channel`, `data-state` =
//!   `online|offline|not_deployed`, `data-mode` = `face_and_card|card_only|closed|offline|
//!   not_deployed`), `lane-mode`, `desired-mode` (`data-mode`), `gate-state` (`data-gate` =
//!   1..3, `data-gate-state`), `lane-step`, `last-decision`, `camera-health` (`data-up`).
//! * alarms: `alarm` (`data-port`, `data-channel`, `data-kind`, `data-since`, `data-acked`),
//!   `alarm-lane`, `ack-reason`, `ack-submit`, `ack-marker`, `ack-result`, `release-reason`,
//!   `release-submit`, `release-result`; the queue at the top of every page `alarm-queue`
//!   (`data-count`, `data-chimes`), `alarm-mute` (`aria-pressed`), `queued-alarms`,
//!   `queued-alarm` (as `alarm`).
//! * lane cameras: `camera-reason`, `camera-submit`, `camera-viewing` (`data-seq`,
//!   `data-ended`), `camera-still` (`data-camera` = 1|2, `data-loaded`), `camera-result`;
//!   orders `orders`, `order` (`data-index`, `data-action`), `order-actor`, `order-reason`.
//! * audit records also `audit-person`, `audit-outcome` (`data-outcome` = `applied|refused`,
//!   `data-code`); filters `filter-actor`, `filter-action`, `filter-target`, `filter-time`.
//! * hall trend: `hall-trend` (`data-clearances`), `trend-clearances`, `trend-latency`,
//!   `grafana-link` (an `<a>` when the port has a dashboard).
//! * desk tasks: `desk-tasks`, `desk-task-find|consent|cancel` (`aria-current="page"` on the
//!   open one), `cancel-this` (the found registration's link to its cancellation).
//! * rollout: `definition-file` (choose the port definition), `port-definition`,
//!   `definition-preview`, `definition-reason`, `definition-submit`.
//! * every page: `language` (`data-lang`), `language-<tag>` (switch to `en` / `zh-Hant`).
//! * lane: `lane-title` (`data-channel`), `lane-state`, `face-scan`, `occupancy`, `held-for`,
//!   `fence`, `acked-order`, `staleness`, `override-reason`, `override-<code>` (codes of
//!   [`crate::dto::OverrideAction::code`]: `gate1_open` … `gate3_unlock`, `mode_face_and_card`,
//!   `mode_card_only`, `mode_closed`, `send_to_officer`, `release`), `override-result`,
//!   `order-status` (`data-index`, `data-state` = `pending|acknowledged`), `orders`, `order`.
//! * desk: `find-port`, `find-kind`, `find-number`, `find-submit`, `find-result`,
//!   `registration` (`data-person`, `data-status`), `person-id`, `guardian-consent`,
//!   `not-registered`; `consent-port`, `consent-name`, `consent-dob`, `consent-category`,
//!   `consent-document-kind`, `consent-document-number`, `consent-valid-from`,
//!   `consent-valid-until`, `consent-guardian-name`, `consent-guardian-document`, `consent-relationship-proof`,
//!   `consent-location`, `consent-reason`, `consent-submit`, `consent-receipt`;
//!   `cancel-port`, `cancel-person`, `cancel-reason`, `cancel-submit`, `cancel-receipt`,
//!   `cancel-progress` (`data-complete`, `data-index`), `replica` (`data-node`, `data-applied`,
//!   `data-shredded`); `service-locations`, `service-location`.
//! * rollout: `rollout-ports`, `rollout-port` (`data-port`), `port-id`, `port-name-input`,
//!   `port-offset`, `port-halls`, `port-nodes`, `port-reason`, `port-submit`, `created-port`;
//!   `rollout-selected`, `bundles`, `bundle` (`data-node`), `bundle-dir`, `bundle-node`,
//!   `bundle-addr`, `bundle-role`, `bundle-channel`, `bundle-reason`, `bundle-submit`;
//!   `init-reason`, `init-submit`, `init-receipt`; `learner-node`, `learner-addr`,
//!   `learner-reason`, `learner-submit`; `retire-node`, `retire-reason`, `retire-submit`,
//!   `retire-receipt`; `stage-pilot`, `stage-reason`, `stage-pilot-submit`,
//!   `stage-all-submit`, `stage-rollback-submit`, `stage-receipt`.
//! * audit: `audit-chain` (`data-status` = `ok|broken`, `data-break-seq`), `audit-records`,
//!   `audit-record` (`data-seq`, `data-action`).
//! * users: `users`, `user-row` (`data-user`, `data-role`, `data-disabled`,
//!   `data-must-change`), `locked-until`, `user-name`, `user-role`, `user-ports`,
//!   `user-password`, `user-reason`, `user-submit`, `generated-password`; `manage-name`,
//!   `manage-action`, `manage-reason`, `manage-submit`, `manage-result`, `reset-password`.
//! * account: `must-change`, `password-current`, `password-new`, `password-repeat`,
//!   `password-submit`, `password-result`, `sessions`, `session-row` (`data-current`),
//!   `session-revoke`.
//! * console audit: as audit (`audit-chain`, `audit-records`, `audit-record`).

mod account;
mod alarms;
mod audit;
mod desk;
mod lane;
mod login;
mod ports;
mod rollout;
mod users;

pub use account::AccountPage;
pub use alarms::{AlarmQueue, titled};
pub use audit::{AuditPage, ConsoleAuditPage};
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

/// Asks the user to confirm an action (in the browser; a page without its script sends at once,
/// the server's own checks still apply).
pub fn confirmed(question: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        leptos::prelude::window()
            .confirm_with_message(question)
            .unwrap_or(false)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = question;
        true
    }
}
