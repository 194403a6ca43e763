//! `/rollout` (`?port=<id>` selects a port): create a port with its halls, generate node
//! bundles, initialise the cluster and add learners, watch nodes join and catch up, and enable
//! face scan in stages (pilot channels, then all) or roll back to card only.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use super::loading;
use super::ports::Members;
use crate::api::{
    AddLearner, CreatePort, CreatePortFromDefinition, InitCluster, IssueBundle,
    PreviewPortDefinition, RetireAppliance, StageFaceScan, fetch_rollout, rollout_ports,
};
use crate::app::{ErrorBox, ViewerResource, action_result};
use crate::dto::{ApiError, BundleView, PortDefinition, RolloutView, Viewer, WriteReceipt};
use crate::i18n::{Lang, tr};
use crate::live::{LinkBadge, live_port};

/// The rollout page.
#[component]
pub fn RolloutPage() -> impl IntoView {
    let query = use_query_map();
    let selected = move || query.read().get("port").unwrap_or_default();
    let ports = Resource::new(|| (), |_| rollout_ports());
    let view_of = Resource::new(selected, |p| async move {
        if p.is_empty() {
            Ok(None)
        } else {
            fetch_rollout(p).await.map(Some)
        }
    });
    let viewer = expect_context::<ViewerResource>();
    view! {
        <Title text="Rollout · Clearway console" />
        <h1>{tr(Lang::current(), "nav-rollout")}</h1>
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match (viewer.await, ports.await, view_of.await) {
                    (_, Err(e), _) | (_, _, Err(e)) => view! { <ErrorBox error=e /> }.into_any(),
                    (Ok(Some(v)), Ok(ports), Ok(selected)) => {
                        view! {
                            <PortList ports=ports />
                            {selected.map(|r| view! { <PortRollout r=r viewer=v.clone() /> })}
                            <DefinitionForm viewer=v.clone() />
                            <CreatePortForm viewer=v />
                        }
                            .into_any()
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
fn PortList(ports: Vec<PortDefinition>) -> impl IntoView {
    view! {
        <table data-test="rollout-ports"><tbody>
            <tr>
                <th>{tr(Lang::current(), "ports-port")}</th>
                <th>{tr(Lang::current(), "ports-halls")}</th>
                <th>{tr(Lang::current(), "roll-seeds")}</th>
                <th>{tr(Lang::current(), "roll-origin")}</th>
            </tr>
            {ports
                .into_iter()
                .map(|p| {
                    view! {
                        <tr data-test="rollout-port" data-port=p.id.clone()>
                            <td>
                                <a href=format!("/rollout?port={}", p.id)>{p.name.clone()}</a>
                            </td>
                            <td>
                                {p
                                    .halls
                                    .iter()
                                    .map(|(id, name, n)| format!("{name} [{id}] × {n}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")}
                            </td>
                            <td>
                                {p
                                    .nodes
                                    .iter()
                                    .map(|(id, a)| format!("{id}={a}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")}
                            </td>
                            <td>{if p.rolled_out { "console" } else { "config file" }}</td>
                        </tr>
                    }
                })
                .collect_view()}
        </tbody></table>
    }
}

/// A port from its definition file (`deploy/ports/<port>.toml`, the file `clearway-node port
/// provision` reads for every appliance): pasted or loaded, previewed, then created.
#[component]
fn DefinitionForm(viewer: Viewer) -> impl IntoView {
    let preview = ServerAction::<PreviewPortDefinition>::new();
    let create = ServerAction::<CreatePortFromDefinition>::new();
    let text = NodeRef::<leptos::html::Textarea>::new();
    let csrf = viewer.csrf.clone();
    let ask_preview = {
        let csrf = csrf.clone();
        move |_| {
            let definition = text.get().map(|t| t.value()).unwrap_or_default();
            preview.dispatch(PreviewPortDefinition {
                csrf: csrf.clone(),
                definition,
            });
        }
    };
    // A chosen file is previewed at once.
    let preview_again = {
        let csrf = csrf.clone();
        Callback::new(move |definition: String| {
            preview.dispatch(PreviewPortDefinition {
                csrf: csrf.clone(),
                definition,
            });
        })
    };
    view! {
        <h2>{tr(Lang::current(), "roll-from-def")}</h2>
        <p class="muted">
            {tr(Lang::current(), "roll-from-def-help")}
        </p>
        <ActionForm action=create>
            <input type="hidden" name="csrf" value=csrf />
            <label>
                {tr(Lang::current(), "roll-choose-file")} " "
                <input
                    type="file"
                    accept=".toml,text/plain"
                    data-test="definition-file"
                    on:change=move |ev| read_chosen_file(ev, text, preview_again)
                />
            </label>
            <label>
                "or paste it: port definition (TOML) "
                <textarea
                    node_ref=text
                    name="definition"
                    rows="8"
                    cols="80"
                    required
                    data-test="port-definition"
                ></textarea>
            </label>
            <p>
                <button type="button" data-test="definition-preview" on:click=ask_preview>
                    {tr(Lang::current(), "roll-preview")}
                </button>
            </p>
            {move || action_result(
                preview.value().get(),
                preview.pending().get(),
                "definition-preview-result",
                |p: PortDefinition| view! { <DefinitionPreview p=p /> },
            )}
            <label>
                {tr(Lang::current(), "reason-required")} " "
                <textarea name="reason" required maxlength="500" rows="2" data-test="definition-reason"></textarea>
            </label>
            <button type="submit" data-test="definition-submit">
                {tr(Lang::current(), "roll-create-def")}
            </button>
        </ActionForm>
        {move || action_result(
            create.value().get(),
            create.pending().get(),
            "definition-result",
            created_port,
        )}
    }
}

/// Reads the file chosen in `ev`'s input into `text` (in the browser) and previews it. The file
/// never leaves the browser until the form is sent; the server checks it like a pasted one.
#[allow(unused_variables)]
fn read_chosen_file(
    ev: leptos::ev::Event,
    text: NodeRef<leptos::html::Textarea>,
    preview: Callback<String>,
) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        let Ok(reader) = web_sys::FileReader::new() else {
            return;
        };
        let r = reader.clone();
        let onload = Closure::once(move |_: web_sys::Event| {
            if let Some(content) = r.result().ok().and_then(|v| v.as_string()) {
                if let Some(t) = text.get() {
                    t.set_value(&content);
                }
                preview.run(content);
            }
        });
        reader.set_onload(Some(onload.as_ref().unchecked_ref()));
        // The reader calls back once; the closure lives until then.
        onload.forget();
        let _ = reader.read_as_text(&file);
    }
}

/// The link to a port just created.
fn created_port(p: PortDefinition) -> impl IntoView {
    view! {
        {tr(Lang::current(), "roll-created")} " "
        <a href=format!("/rollout?port={}", p.id) data-test="created-port">
            {p.name}
        </a>
    }
}

/// What a definition would create.
#[component]
fn DefinitionPreview(p: PortDefinition) -> impl IntoView {
    let channels: u32 = p.halls.iter().map(|(_, _, n)| n).sum();
    view! {
        <div data-test="preview" data-port=p.id.clone() data-channels=channels.to_string()>
            <p>
                {format!(
                    "{} ({}), UTC{:+} h: {} halls, {channels} channels (one lane node each), {} voters",
                    p.name,
                    p.id,
                    f64::from(p.utc_offset_minutes) / 60.0,
                    p.halls.len(),
                    p.nodes.len(),
                )}
            </p>
            <table><tbody>
                <tr><th>{tr(Lang::current(), "roll-hall")}</th><th>{tr(Lang::current(), "users-name")}</th><th>{tr(Lang::current(), "roll-channels")}</th></tr>
                {p
                    .halls
                    .iter()
                    .map(|(id, name, n)| {
                        view! {
                            <tr data-test="preview-hall" data-hall=id.clone()>
                                <td>{id.clone()}</td><td>{name.clone()}</td><td>{*n}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
                <tr><th>{tr(Lang::current(), "roll-voter")}</th><th colspan="2">{tr(Lang::current(), "roll-address")}</th></tr>
                {p
                    .nodes
                    .iter()
                    .map(|(id, addr)| {
                        view! {
                            <tr data-test="preview-voter">
                                <td>{*id}</td><td colspan="2">{addr.clone()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody></table>
        </div>
    }
}

#[component]
fn CreatePortForm(viewer: Viewer) -> impl IntoView {
    let create = ServerAction::<CreatePort>::new();
    view! {
        <h2>{tr(Lang::current(), "roll-create")}</h2>
        <ActionForm action=create>
            <input type="hidden" name="csrf" value=viewer.csrf />
            <label>
                {tr(Lang::current(), "roll-port-id")} " "
                <input type="text" name="id" required maxlength="32" data-test="port-id" />
            </label>
            <label>
                "Name " <input type="text" name="name" required maxlength="200" data-test="port-name-input" />
            </label>
            <label>
                {tr(Lang::current(), "roll-offset")} " "
                <input type="number" name="utc_offset_minutes" value="480" data-test="port-offset" />
            </label>
            <label>
                {tr(Lang::current(), "roll-halls")} " "
                <textarea
                    name="halls"
                    rows="3"
                    required
                    placeholder="passenger | Passenger Inspection Hall | 48"
                    data-test="port-halls"
                ></textarea>
            </label>
            <label>
                {tr(Lang::current(), "roll-seed-input")} " "
                <input
                    type="text"
                    name="nodes"
                    required
                    placeholder="1=10.1.0.11:7400, 2=10.1.0.12:7400, 3=10.1.0.13:7400"
                    data-test="port-nodes"
                />
            </label>
            <label>
                {tr(Lang::current(), "reason-required")} " "
                <textarea name="reason" required maxlength="500" rows="2" data-test="port-reason"></textarea>
            </label>
            <button type="submit" data-test="port-submit">
                {tr(Lang::current(), "roll-create-def")}
            </button>
        </ActionForm>
        {move || action_result(
            create.value().get(),
            create.pending().get(),
            "port-result",
            created_port,
        )}
    }
}

#[component]
fn PortRollout(r: RolloutView, viewer: Viewer) -> impl IntoView {
    let port_id = r.port.id.clone();
    let port = StoredValue::new(r.port.id.clone());
    let live = live_port(r.snapshot.clone());
    let bundle = ServerAction::<IssueBundle>::new();
    let init = ServerAction::<InitCluster>::new();
    let learner = ServerAction::<AddLearner>::new();
    let retire = ServerAction::<RetireAppliance>::new();
    let stage = ServerAction::<StageFaceScan>::new();
    let receipt = |test: &'static str| move |w: WriteReceipt| view! { <span data-test=test>{w.summary}</span> };
    let csrf = StoredValue::new(viewer.csrf.clone());
    view! {
        <h2 data-test="rollout-selected" data-port=port_id.clone()>{r.port.name.clone()}</h2>
        <p>
            <A href=format!("/port/{port_id}")>"port view"</A>
            " · "
            <LinkBadge live=live />
        </p>
        <h3>{tr(Lang::current(), "roll-nodes")}</h3>
        <Members live=live />

        <h3>{tr(Lang::current(), "roll-bundles")}</h3>
        <ul data-test="bundles">
            {r
                .bundles
                .iter()
                .map(|b| view! { <BundleItem b=b.clone() /> })
                .collect_view()}
        </ul>
        <ActionForm action=bundle>
            <input type="hidden" name="csrf" value=csrf.get_value() />
            <input type="hidden" name="port" value=port.get_value() />
            <label>"Node id " <input type="number" name="node" min="1" required data-test="bundle-node" /></label>
            <label>
                "QUIC address " <input type="text" name="addr" required placeholder="10.1.0.21:7400" data-test="bundle-addr" />
            </label>
            <label>
                {tr(Lang::current(), "users-role")} " "
                <select name="role" data-test="bundle-role">
                    <option value="voter">"voter (rack appliance)"</option>
                    <option value="learner">"learner (lane node)"</option>
                </select>
            </label>
            <label>
                {tr(Lang::current(), "roll-channel")} " "
                <input type="text" name="channel" placeholder="passenger/1" data-test="bundle-channel" />
            </label>
            <label>
                {tr(Lang::current(), "roll-csr")} " "
                <textarea
                    name="csr"
                    required
                    rows="6"
                    placeholder="-----BEGIN CERTIFICATE REQUEST-----"
                    data-test="bundle-csr"
                ></textarea>
            </label>
            <label>
                {tr(Lang::current(), "reason-required")} " "
                <textarea name="reason" required maxlength="500" rows="2" data-test="bundle-reason"></textarea>
            </label>
            <button type="submit" data-test="bundle-submit">"Sign the appliance's certificate"</button>
        </ActionForm>
        {move || action_result(
            bundle.value().get(),
            bundle.pending().get(),
            "bundle-result",
            |b: BundleView| view! { <BundleItem b=b /> },
        )}

        {tr(Lang::current(), "ports-cluster")}
        <ActionForm action=init>
            <input type="hidden" name="csrf" value=csrf.get_value() />
            <input type="hidden" name="port" value=port.get_value() />
            <label>
                {tr(Lang::current(), "reason-required")} " "
                <input type="text" name="reason" required maxlength="500" data-test="init-reason" />
            </label>
            <button type="submit" data-test="init-submit">
                {tr(Lang::current(), "roll-init")}
            </button>
        </ActionForm>
        {move || action_result(init.value().get(), init.pending().get(), "init-result", receipt("init-receipt"))}
        <ActionForm action=learner>
            <input type="hidden" name="csrf" value=csrf.get_value() />
            <input type="hidden" name="port" value=port.get_value() />
            <label>"Node id " <input type="number" name="node" min="1" required data-test="learner-node" /></label>
            <label>"QUIC address " <input type="text" name="addr" required data-test="learner-addr" /></label>
            <label>
                {tr(Lang::current(), "reason-required")} " "
                <input type="text" name="reason" required maxlength="500" data-test="learner-reason" />
            </label>
            <button type="submit" data-test="learner-submit">"Add learner"</button>
        </ActionForm>
        {move || action_result(learner.value().get(), learner.pending().get(), "learner-result", receipt("learner-receipt"))}
        <ActionForm action=retire>
            <input type="hidden" name="csrf" value=csrf.get_value() />
            <input type="hidden" name="port" value=port.get_value() />
            <label>"Node id " <input type="number" name="node" min="1" required data-test="retire-node" /></label>
            <label>
                {tr(Lang::current(), "reason-required")} " "
                <input type="text" name="reason" required maxlength="500" data-test="retire-reason" />
            </label>
            <button type="submit" data-test="retire-submit">
                {tr(Lang::current(), "roll-retire")}
            </button>
        </ActionForm>
        {move || action_result(retire.value().get(), retire.pending().get(), "retire-result", receipt("retire-receipt"))}

        <h3>{tr(Lang::current(), "roll-stages")}</h3>
        <ActionForm action=stage>
            <input type="hidden" name="csrf" value=csrf.get_value() />
            <input type="hidden" name="port" value=port.get_value() />
            <label>
                {tr(Lang::current(), "roll-pilot")} " "
                <input type="text" name="pilot" placeholder="passenger/1, passenger/2" data-test="stage-pilot" />
            </label>
            <label>
                {tr(Lang::current(), "reason-required")} " "
                <input type="text" name="reason" required maxlength="500" data-test="stage-reason" />
            </label>
            <button type="submit" name="stage" value="pilot" data-test="stage-pilot-submit">
                {tr(Lang::current(), "roll-enable-pilot")}
            </button>
            " "
            <button type="submit" name="stage" value="all" data-test="stage-all-submit">
                {tr(Lang::current(), "roll-enable-all")}
            </button>
            " "
            <button type="submit" name="stage" value="rollback" data-test="stage-rollback-submit">
                {tr(Lang::current(), "roll-rollback")}
            </button>
        </ActionForm>
        {move || action_result(stage.value().get(), stage.pending().get(), "stage-result", receipt("stage-receipt"))}
    }
}

#[component]
fn BundleItem(b: BundleView) -> impl IntoView {
    view! {
        <li data-test="bundle" data-node=b.node.to_string()>
            {format!("node {}: ", b.node)}
            <code data-test="bundle-dir">{b.dir.clone()}</code>
            {format!(" ({})", b.files.join(", "))}
        </li>
    }
}
