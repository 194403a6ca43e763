//! Fuzzing harnesses: one function per parser of untrusted bytes, shared by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/<name>.rs`, libFuzzer) and the corpus regression test
//! (`node/tests/fuzz_corpus.rs`, which replays `fuzz/corpus/` and `fuzz/regressions/` on every
//! `cargo test`).
//!
//! Each harness feeds the bytes to the parser through the entry point the product's network or
//! file edge uses, with the same size limits, and checks an invariant where one is cheap (a
//! decoded value encodes and decodes to the same value). A harness never panics on any input:
//! a panic, a hang or an out-of-memory here is a bug in the parser.
//!
//! [`TARGETS`] lists them by name; the names are the fuzz targets' file names.

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use chrono::NaiveDate;
use clearway_gallery::{Command, Destination, ModelId, Registry};

use crate::cluster::config::{GalleryConfig, NodeConfig};
use crate::cluster::protocol::{self, Call, Reply};
use crate::face::Frame;
use crate::lane::authority::{self, OutboxKeys, SealKey};
use crate::lane::document::frame::{FrameDecoder, MAX_FRAME_BYTES, encode_frame};
use crate::lane::document::{ChipTrust, DocumentSigner, RawDocument, read_document_for};
use crate::lane::fingerprint::TcpFingerprintReaderConfig;
use crate::lane::fingerprint::wire;
use crate::lane::gate::{GateController, ModbusGates, ModbusGatesConfig};
use crate::lane::procedure::{
    AuthorityRecord, Fence, GateAction, GateCommand, GateId, PrerequisiteStatus, Verdict,
};
use crate::net::rpc::{self, MAX_FRAME};
use crate::store::custody::Custody;
use crate::store::keyring::Keyring;

/// A harness: the bytes one fuzzing run (or one corpus file) holds.
pub type Harness = fn(&[u8]);

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// What CI runs instead of a campaign: checks that the targets under `fuzz_dir/fuzz_targets/`
/// that `owns` selects are exactly `targets`, each with a non-empty `corpus/<name>/`, then
/// replays every corpus and `regressions/<name>/` file through its harness. Panics on a
/// mismatch, a missing corpus or a harness's panic; answers a line per target.
pub fn replay_all(fuzz_dir: &Path, targets: &[(&str, Harness)], owns: fn(&str) -> bool) -> String {
    let on_disk: std::collections::BTreeSet<String> = files(&fuzz_dir.join("fuzz_targets"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|name| owns(name))
        .collect();
    let harnessed: std::collections::BTreeSet<String> =
        targets.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(
        on_disk, harnessed,
        "the fuzz target files and the harnesses differ"
    );
    let mut summary = Vec::new();
    for (name, harness) in targets {
        let corpus = files(&fuzz_dir.join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} is missing or empty");
        let regressions = files(&fuzz_dir.join("regressions").join(name));
        for input in corpus.iter().chain(&regressions) {
            let bytes = std::fs::read(input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
            eprintln!("{}", input.display());
            harness(&bytes);
        }
        summary.push(format!(
            "{name}: {} corpus, {} regressions",
            corpus.len(),
            regressions.len()
        ));
    }
    summary.join("\n")
}

/// Every harness by target name, in the order `just fuzz` runs them.
pub const TARGETS: &[(&str, Harness)] = &[
    ("mrz", mrz),
    ("document_frame", document_frame),
    ("fingerprint_ndjson", fingerprint_ndjson),
    ("modbus_response", modbus_response),
    ("rpc_frame", rpc_frame),
    ("outbox_envelope", outbox_envelope),
    ("image_frame", image_frame),
    ("node_config", node_config),
    ("gallery_import", gallery_import),
    ("authority_response", authority_response),
    ("snapshot_stream", snapshot_stream),
];

/// The day the document harnesses read documents on (two-digit years expand relative to it).
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default()
}

/// Drives a future that never waits on anything but its (in-memory) input to completion.
fn ready<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// The MRZ text a document reader delivers (`read_document_for`: layout, alphabet, check
/// digits, dates), for a Macao port, a Hong Kong port and a port of any destination.
pub fn mrz(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for destination in [Some(Destination::Macao), Some(Destination::HongKong), None] {
        let _ = read_document_for(text, None, today(), destination);
    }
}

/// The CSCA the document targets trust: a test signer's, made once per process (a corpus
/// frame's signature then fails at the CSCA, after every part of it was parsed).
fn chip_trust() -> &'static ChipTrust {
    static TRUST: std::sync::OnceLock<ChipTrust> = std::sync::OnceLock::new();
    TRUST.get_or_init(|| {
        DocumentSigner::generate("Fuzzing")
            .and_then(|s| ChipTrust::from_pem(s.csca_pem().as_bytes()))
            .unwrap_or_default()
    })
}

/// The document reader's byte stream (`FrameDecoder` with the default frame limit, fed in two
/// pieces as a TCP read would), every decoded frame read as the lane reads it (MRZ and chip
/// JSON). A decoded document encodes (`encode_frame`) and decodes to the same document.
pub fn document_frame(data: &[u8]) {
    let mut decoder = FrameDecoder::new(MAX_FRAME_BYTES);
    let (first, second) = data.split_at(data.len() / 2);
    decoder.push(first);
    decoder.push(second);
    while let Some(item) = decoder.poll() {
        let Ok(doc) = item else { continue };
        let _ = doc.read_for(today(), Some(Destination::Macao));
        let _ = doc.read_for(today(), None);
        let _ = doc.read_authenticated(today(), Some(Destination::Macao), chip_trust());
        if let Ok(frame) = encode_frame(&doc, MAX_FRAME_BYTES) {
            let mut again = FrameDecoder::new(MAX_FRAME_BYTES);
            again.push(&frame);
            match again.poll() {
                Some(Ok(back)) => assert_eq!(back, doc, "a frame does not decode as encoded"),
                other => panic!("an encoded frame does not decode: {other:?}"),
            }
        }
    }
    let _ = RawDocument::mrz_only(String::from_utf8_lossy(data)).read(today());
}

/// The fingerprint reader's NDJSON replies as the client reads them (`wire::read_line` with the
/// default `max_frame`, then `wire::decode_reply`), and the same lines as requests (the
/// simulator's side). A decoded capture encodes and decodes to the same capture.
pub fn fingerprint_ndjson(data: &[u8]) {
    let max =
        TcpFingerprintReaderConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).max_frame;
    let mut reader = tokio::io::BufReader::with_capacity(512, data);
    let mut line = Vec::new();
    while let Some(Ok(true)) = ready(wire::read_line(&mut reader, max, &mut line)) {
        if let Ok(capture) = wire::decode_reply(&line) {
            let encoded = wire::encode_capture(&capture);
            let back = wire::decode_reply(encoded.strip_suffix(b"\n").unwrap_or(&encoded));
            assert_eq!(back.as_ref(), Ok(&capture), "a capture does not round-trip");
        }
        let _ = wire::decode_request(&line);
    }
}

/// One answer of the gate controller: the first byte picks the call (read the status, or send
/// a gate command), the rest is what the controller sends back on the Modbus TCP connection,
/// read by tokio-modbus and interpreted by [`ModbusGates`] as the lane's gate task does.
pub fn modbus_response(data: &[u8]) {
    let Some((&op, reply)) = data.split_first() else {
        return;
    };
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    // The link never waits: past the reply it reads end-of-stream, so no call reaches its
    // timeout.
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok()
    });
    let Some(runtime) = runtime else { return };
    let link = tokio::io::join(std::io::Cursor::new(reply.to_vec()), tokio::io::sink());
    let config = ModbusGatesConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 502)));
    let mut gates = ModbusGates::attached(config, tokio_modbus::client::tcp::attach(link));
    runtime.block_on(async {
        if op % 2 == 0 {
            let _ = gates.status().await;
        } else {
            let gate = match op / 2 % 3 {
                0 => GateId::One,
                1 => GateId::Two,
                _ => GateId::Three,
            };
            let cmd = GateCommand {
                gate,
                action: GateAction::Open,
                fence: Fence { term: 3, index: 42 },
            };
            let _ = gates.command(cmd).await;
        }
    });
}

/// One QUIC RPC frame as a stream carries it (`rpc::read_frame` with [`MAX_FRAME`]), its body
/// decoded as a [`Call`] (what a node serves) and as a [`Reply`] (what a client reads). A decoded
/// message re-encodes to bytes that decode and encode to the same bytes.
pub fn rpc_frame(data: &[u8]) {
    let mut stream = data;
    let Some(Ok(body)) = ready(rpc::read_frame(&mut stream, MAX_FRAME)) else {
        return;
    };
    if let Ok(call) = protocol::decode::<Call>(&body) {
        stable::<Call>(&call);
    }
    if let Ok(reply) = protocol::decode::<Reply>(&body) {
        stable::<Reply>(&reply);
    }
}

fn stable<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) {
    let Ok(bytes) = protocol::encode(value) else {
        return;
    };
    let again = protocol::decode::<T>(&bytes).map(|v| protocol::encode(&v).ok());
    assert!(
        matches!(&again, Ok(Some(b)) if *b == bytes),
        "a decoded message does not round-trip"
    );
}

/// The outbox keys the envelope harness opens with, fixed so that committed corpus files open:
/// a keyring mid-rotation (epoch 2, `[2; 32]`, and epoch 1, `[1; 32]`) loaded from a file that
/// is removed again at once, and a legacy version 1 key (`[9; 32]`).
fn outbox_keys() -> Option<&'static OutboxKeys> {
    static KEYS: OnceLock<Option<OutboxKeys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("clearway-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join("outbox.key");
        let text = format!(
            "clearway keyring v1\n2 {}\n1 {}\n",
            hex::encode([2u8; 32]),
            hex::encode([1u8; 32])
        );
        let ring = std::fs::write(&path, text)
            .ok()
            .and_then(|()| Keyring::load(&path, false, Arc::new(Custody::plain())).ok());
        let _ = std::fs::remove_dir_all(&dir);
        Some(OutboxKeys::new(Arc::new(ring?)).with_legacy(SealKey::from_bytes([9u8; 32])))
    })
    .as_ref()
}

/// An entry of the lane's outbox as read back from its sled tree. First byte even: the rest is
/// a stored envelope, opened (`open_bytes`) and its record parsed as the delivery task does.
/// Odd: the rest is a record's plaintext, sealed into an envelope that must open to the same
/// key and plaintext, then parsed.
pub fn outbox_envelope(data: &[u8]) {
    let (Some((&mode, rest)), Some(keys)) = (data.split_first(), outbox_keys()) else {
        return;
    };
    let plain = if mode % 2 == 0 {
        match authority::open_bytes(keys, rest) {
            Ok((_, plain)) => plain.to_vec(),
            Err(_) => return,
        }
    } else {
        let key = "lane-1/inc/42";
        let Ok(sealed) = authority::seal_bytes(keys, key, rest, u64::from(mode)) else {
            return;
        };
        let opened = authority::open_bytes(keys, &sealed);
        assert!(
            matches!(&opened, Ok((k, p)) if k == key && p.as_slice() == rest),
            "a sealed envelope does not open to what was sealed"
        );
        rest.to_vec()
    };
    if let Ok(record) = serde_json::from_slice::<AuthorityRecord>(&plain) {
        let json = serde_json::to_vec(&record).unwrap_or_default();
        let back = serde_json::from_slice::<AuthorityRecord>(&json).ok();
        assert_eq!(back.as_ref(), Some(&record), "a record does not round-trip");
    }
}

/// A photo's bytes as `Frame::open` decodes them (`Frame::decode`: JPEG or PNG, at most
/// 8192 pixels a side and 512 MiB of allocation, EXIF orientation applied).
pub fn image_frame(data: &[u8]) {
    if let Ok(frame) = Frame::decode(data, "fuzz") {
        let (w, h) = (frame.width(), frame.height());
        assert!(
            (1..=crate::face::frame::MAX_SIDE_PX).contains(&w)
                && (1..=crate::face::frame::MAX_SIDE_PX).contains(&h),
            "a decoded frame outside the size limits: {w}x{h}"
        );
    }
}

/// A node's TOML config file (`NodeConfig::parse`, what `NodeConfig::from_file` runs: relative
/// paths resolved, values validated), and the openraft config a valid one gives; and the same
/// bytes as a face pipeline config (`--face-config`: models, quality gate, `[pad]`), parsed and
/// validated as `FaceConfig::from_file` does.
pub fn node_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = NodeConfig::parse(text, Path::new("/etc/clearway")) {
        let _ = config.openraft("fuzz");
        let _ = config.advertise();
    }
    if let Ok(mut face) = toml::from_str::<crate::face::FaceConfig>(text)
        && face.validate().is_ok()
    {
        face.resolve_paths(Path::new("/var/lib/clearway/assets"));
    }
}

/// A `gallery import` file: each non-blank line parsed as the CLI parses it, and each person
/// with the templates it carries enrolled in a registry of the node's default model, as the
/// leader applies the batch (photos named by a line are not opened).
pub fn gallery_import(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let model = GalleryConfig::default();
    let Ok(mut registry) = Registry::new(ModelId::new(model.model, model.model_version), model.dim)
    else {
        return;
    };
    let mut changes = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(parsed) = serde_json::from_str::<crate::cli::ImportLine>(line) else {
            continue;
        };
        registry.begin_batch(1, None);
        let _ = registry.apply(
            Command::Enrol {
                person: parsed.person,
                templates: parsed.templates,
            },
            &mut changes,
        );
        changes.clear();
    }
}

/// An authority's answer body (at most `MAX_ANSWER_BYTES`, as the client reads it) decoded as
/// an inspection verdict and as a prerequisite status. A decoded answer round-trips.
pub fn authority_response(data: &[u8]) {
    if data.len() > authority::MAX_ANSWER_BYTES {
        return;
    }
    if let Ok(verdict) = serde_json::from_slice::<Verdict>(data) {
        let json = serde_json::to_vec(&verdict).unwrap_or_default();
        let back = serde_json::from_slice::<Verdict>(&json).ok();
        assert_eq!(
            back.as_ref(),
            Some(&verdict),
            "a verdict does not round-trip"
        );
    }
    if let Ok(status) = serde_json::from_slice::<PrerequisiteStatus>(data) {
        let json = serde_json::to_vec(&status).unwrap_or_default();
        let back = serde_json::from_slice::<PrerequisiteStatus>(&json).ok();
        assert_eq!(back.as_ref(), Some(&status), "a status does not round-trip");
    }
}

/// A snapshot stream as a node receives it from the leader (`cluster::snapshot`): every record
/// decoded as an install decodes it (persons restored into a registry, notices, the ledger), then
/// the whole checked as an install checks it first (lengths, counts, the SHA-256 trailer).
/// Decoding does not wait for the trailer here, so the fuzzer reaches the records without
/// forging digests.
pub fn snapshot_stream(data: &[u8]) {
    use crate::cluster::snapshot::{self, StreamReader};
    use clearway_gallery::{CancellationNotice, Entry, NoticeId};
    let verified = snapshot::verify(data);
    let Ok((_, mut reader)) = StreamReader::start(data) else {
        assert!(verified.is_err(), "a stream that does not start verified");
        return;
    };
    let header = reader.header();
    let Ok(mut registry) = Registry::new(ModelId::new("sface", "2021dec"), 128) else {
        return;
    };
    for _ in 0..header.persons {
        let Ok(entry) = reader.frame::<Entry>() else {
            return;
        };
        let _ = registry.restore(entry);
    }
    for _ in 0..header.notices {
        let Ok((id, notice)) = reader.frame::<(NoticeId, CancellationNotice)>() else {
            return;
        };
        registry.restore_notice(id, notice);
    }
    if snapshot::read_ledger(reader).is_ok() {
        assert!(
            verified.is_ok(),
            "a stream that decodes whole also checks whole"
        );
    }
}
