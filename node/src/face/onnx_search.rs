//! 1:N search as an ONNX Runtime graph, so it can run on the GPU (the CUDA execution provider) with
//! the gallery resident in device memory. On a machine without a GPU the node searches with the
//! gallery's own int8 scan (`clearway_gallery::Gallery::search`); this engine is for when one is
//! present, and its tests run it on the CPU provider to prove it gives the scan's results.
//!
//! The graph is built in code with ONNX Runtime's model editor API (there is no model file). For
//! each segment of the gallery's rows ([`SEGMENT_ROWS`]):
//!
//! `MatMulInteger(rows_s, probesᵀ) → Cast(f32) → Mul(probe scales) → Mul(row scales) → TopK → + base_s`
//!
//! gives the segment's best rows with their global row numbers; one more `TopK` over every
//! segment's candidates (and a `GatherElements` for their rows) gives the best
//! `k × templates per person` rows of the gallery, which the gallery ranks into persons on the host
//! ([`Gallery::rank_rows`]). The integer dot products are exact and the two multiplications are the
//! scan's own, in the scan's order, so every score equals the CPU scan's bit for bit and so does
//! the ranking (`TopK` breaks ties by the lower index, as the scan does). Graph optimisations are
//! off so that no fusion reorders that arithmetic.
//!
//! Where the rows live:
//! - On the CUDA provider, each segment's rows and scales are copied to device memory once, and
//!   again only when the segment's version changes (an apply touched one of its rows). A segment
//!   of the same length is overwritten in place; a buffer given up (a shorter last segment, a
//!   dropped index) is overwritten with zeros first, so cancelled templates do not linger on the
//!   device. Probes go up with each search; only `k × templates` candidates per probe come back.
//! - On the CPU provider the graph reads the gallery's rows in place: no copy. With
//!   [`OrtIndex::with_copies`] it keeps copies in host memory the same way, so the tests run the
//!   GPU's copy path on a machine without one.
//!
//! The caller holds the gallery (the replica's read lock) across [`OrtIndex::search_batch`], so the
//! rows the device scored are the rows the ranking names.

use std::sync::Mutex;

use ort::editor::{Graph, Model, Node, ONNX_DOMAIN, Opset};
use ort::memory::{AllocationDevice, Allocator};
use ort::operator::Attribute;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{
    DynTensor, DynTensorValueType, Outlet, Shape, SymbolicDimensions, Tensor, TensorElementType,
    TensorRef, ValueType,
};
use tracing::info;
use zeroize::Zeroize;

use super::onnx::{Device, OrtRuntime};
use crate::error::{Error, Result};
use clearway_gallery::{Gallery, Hit, SEGMENT_ROWS, Segment};

/// ONNX opset of the graph: every operator it uses (MatMulInteger-10, TopK-11, GatherElements-13,
/// Cast-13, Mul/Add-14, Concat-13) has CPU and CUDA kernels at this version.
const OPSET: u32 = 17;

/// `Cast`'s `to` for float32 (ONNX `TensorProto.FLOAT`).
const ONNX_FLOAT: i64 = 1;

/// An exact 1:N engine on an ONNX Runtime execution provider.
pub struct OrtIndex {
    runtime: OrtRuntime,
    device: Device,
    dim: usize,
    /// The most templates one person holds: `k` persons are among the best `k × this` rows.
    templates_per_person: usize,
    state: Mutex<State>,
    /// Graph runs so far.
    runs: std::sync::atomic::AtomicU64,
    /// Whether the rows are copied into the provider's memory (always on CUDA; on the CPU only
    /// when asked, to run the GPU's copy path on a machine without one).
    copies: bool,
}

impl std::fmt::Debug for OrtIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtIndex")
            .field("device", &self.device)
            .field("dim", &self.dim)
            .field("templates_per_person", &self.templates_per_person)
            .finish_non_exhaustive()
    }
}

struct State {
    /// The session for the current number of segments.
    session: Session,
    segments: usize,
    /// Device copies of the segments (CUDA only; the CPU provider reads the gallery in place).
    resident: Vec<Resident>,
}

/// One segment's rows and scales in device memory.
struct Resident {
    version: u64,
    len: usize,
    rows: Tensor<i8>,
    scales: Tensor<f32>,
}

impl OrtIndex {
    /// An engine for galleries of dimension `dim` whose persons hold at most
    /// `templates_per_person` templates, on `runtime`'s execution provider (`auto`: CUDA when it
    /// registers and builds the graph, else CPU).
    pub fn new(runtime: &OrtRuntime, dim: usize, templates_per_person: usize) -> Result<OrtIndex> {
        if dim == 0 || templates_per_person == 0 {
            return Err(Error::Config(format!(
                "a search graph needs a dimension and templates per person above 0, got {dim} and {templates_per_person}"
            )));
        }
        let (session, device) = search_session(runtime, None, dim, 1)?;
        info!(%device, dim, "1:N search graph ready.");
        Ok(OrtIndex {
            runtime: runtime.clone(),
            device,
            dim,
            templates_per_person,
            state: Mutex::new(State {
                session,
                segments: 1,
                resident: Vec::new(),
            }),
            runs: Default::default(),
            copies: device == Device::Cuda,
        })
    }

    /// Copies the rows into the provider's memory and keeps them in step by segment version
    /// even on the CPU provider, as on CUDA: the GPU's path, for tests on a machine without one.
    pub fn with_copies(mut self) -> OrtIndex {
        self.copies = true;
        self
    }

    /// The execution provider the graph runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// How many searches ran the graph (empty galleries and `k = 0` do not).
    pub fn runs(&self) -> u64 {
        self.runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The dimension of the galleries it searches.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The best `k` persons for one probe, as [`Gallery::search`] gives them.
    pub fn search(&self, gallery: &Gallery, probe: &[f32], k: usize) -> Result<Vec<Hit>> {
        Ok(self
            .search_batch(gallery, probe, k)?
            .pop()
            .unwrap_or_default())
    }

    /// The best `k` persons for each probe of a flat batch (`probes.len()` a multiple of the
    /// dimension), equal to [`Gallery::search_batch`]'s. Errors as that does on bad probes.
    pub fn search_batch(
        &self,
        gallery: &Gallery,
        probes: &[f32],
        k: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        if gallery.dim() != self.dim {
            return Err(clearway_gallery::Error::DimensionMismatch {
                expected: self.dim,
                got: gallery.dim(),
            }
            .into());
        }
        if !probes.len().is_multiple_of(self.dim) {
            return Err(clearway_gallery::Error::RaggedBatch {
                dim: self.dim,
                len: probes.len(),
            }
            .into());
        }
        let batch = probes.len() / self.dim;
        // Probes transposed (dim × batch), so the gallery is the left operand and is never copied.
        let mut probe_values = vec![0i8; probes.len()];
        let mut probe_scales = Vec::with_capacity(batch);
        for (b, probe) in probes.chunks_exact(self.dim).enumerate() {
            let (values, scale) = gallery.quantize_probe(probe)?;
            for (d, v) in values.into_iter().enumerate() {
                probe_values[d * batch + b] = v;
            }
            probe_scales.push(scale);
        }
        if k == 0 || batch == 0 || gallery.is_empty() {
            return Ok(vec![Vec::new(); batch]);
        }
        let wanted = k.saturating_mul(self.templates_per_person);
        let segments: Vec<Segment<'_>> = gallery.segments().collect();

        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *state;
        if state.segments != segments.len() {
            let (session, _) =
                search_session(&self.runtime, Some(self.device), self.dim, segments.len())?;
            state.session = session;
            state.segments = segments.len();
        }
        if self.copies {
            let target = match self.device {
                Device::Cuda => AllocationDevice::CUDA,
                Device::Cpu => AllocationDevice::CPU,
            };
            sync_resident(&mut state.resident, &segments, self.dim, target)?;
        }

        let mut inputs: Vec<(String, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(3 + 3 * segments.len());
        inputs.push((
            "probes".into(),
            Tensor::from_array(([self.dim, batch], probe_values))?.into(),
        ));
        inputs.push((
            "probe_scales".into(),
            Tensor::from_array(([1, batch], probe_scales))?.into(),
        ));
        let mut candidates = 0;
        for (s, segment) in segments.iter().enumerate() {
            let len = segment.scales.len();
            let take = wanted.min(len);
            candidates += take;
            inputs.push((
                format!("k_{s}"),
                Tensor::from_array(([1], vec![take as i64]))?.into(),
            ));
            match state.resident.get(s) {
                Some(r) if self.copies => {
                    inputs.push((format!("rows_{s}"), (&r.rows).into()));
                    inputs.push((format!("scales_{s}"), (&r.scales).into()));
                }
                _ => {
                    inputs.push((
                        format!("rows_{s}"),
                        TensorRef::from_array_view(([len, self.dim], segment.data))?.into(),
                    ));
                    inputs.push((
                        format!("scales_{s}"),
                        TensorRef::from_array_view(([len, 1], segment.scales))?.into(),
                    ));
                }
            }
        }
        let take = wanted.min(candidates);
        inputs.push((
            "k".into(),
            Tensor::from_array(([1], vec![take as i64]))?.into(),
        ));

        let mut outputs = state.session.run(inputs)?;
        self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (scores, rows) = (
            on_host(&mut outputs, "scores")?,
            on_host(&mut outputs, "rows")?,
        );
        let (_, scores) = scores.try_extract_tensor::<f32>()?;
        let (_, rows) = rows.try_extract_tensor::<i64>()?;
        if scores.len() != take * batch || rows.len() != take * batch {
            return Err(Error::ModelOutput(format!(
                "the search graph returned {} scores and {} rows for {take} × {batch}",
                scores.len(),
                rows.len()
            )));
        }
        (0..batch)
            .map(|b| {
                let scored = (0..take).map(|j| {
                    let row = usize::try_from(rows[j * batch + b]).unwrap_or(usize::MAX);
                    (scores[j * batch + b], row)
                });
                Ok(gallery.rank_rows(scored, k)?)
            })
            .collect()
    }
}

impl Drop for OrtIndex {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for resident in state.resident.drain(..) {
            wipe(resident);
        }
    }
}

/// Output `name` on the host: as it is when the provider returned it there, else copied.
fn on_host(outputs: &mut ort::session::SessionOutputs<'_>, name: &str) -> Result<DynTensor> {
    let value = outputs
        .remove(name)
        .ok_or_else(|| Error::ModelOutput(format!("the search graph has no output {name}")))?
        .downcast::<DynTensorValueType>()?;
    if value.memory_info().is_cpu_accessible() {
        Ok(value)
    } else {
        Ok(value.to(AllocationDevice::CPU, 0)?)
    }
}

/// Brings the device copies in line with `segments`: copies a segment whose version changed
/// (in place when its length did not), and wipes buffers given up.
fn sync_resident(
    resident: &mut Vec<Resident>,
    segments: &[Segment<'_>],
    dim: usize,
    target: AllocationDevice,
) -> Result<()> {
    while resident.len() > segments.len() {
        if let Some(r) = resident.pop() {
            wipe(r);
        }
    }
    for (s, segment) in segments.iter().enumerate() {
        let len = segment.scales.len();
        if resident
            .get(s)
            .is_some_and(|r| r.version == segment.version)
        {
            continue;
        }
        // The copy's source must be an owned tensor: ort clones a borrowed one bound as an input,
        // and that clone is itself such a copy, which deadlocks (ort 2.0.0-rc.15, copy.rs).
        let mut rows = Tensor::from_array(([len, dim], segment.data.to_vec()))?;
        let scales = Tensor::from_array(([len, 1], segment.scales.to_vec()))?;
        let mut copy = || -> Result<()> {
            match resident.get_mut(s) {
                Some(r) if r.len == len => {
                    rows.copy_into(&mut r.rows)?;
                    scales.copy_into(&mut r.scales)?;
                    r.version = segment.version;
                }
                slot => {
                    let fresh = Resident {
                        version: segment.version,
                        len,
                        rows: rows.to(target.clone(), 0)?,
                        scales: scales.to(target.clone(), 0)?,
                    };
                    match slot {
                        Some(old) => wipe(std::mem::replace(old, fresh)),
                        None => resident.push(fresh),
                    }
                }
            }
            Ok(())
        };
        let copied = copy();
        // The host staging copy held templates: erase it before it is freed.
        rows.extract_tensor_mut().1.zeroize();
        copied?;
    }
    Ok(())
}

/// Overwrites a device copy with zeros before it is freed (best effort: a failure is logged).
fn wipe(mut resident: Resident) {
    let result = (|| -> Result<()> {
        let rows = resident.rows.shape().num_elements();
        Tensor::from_array((resident.rows.shape().clone(), vec![0i8; rows]))?
            .copy_into(&mut resident.rows)?;
        let scales = resident.scales.shape().num_elements();
        Tensor::from_array((resident.scales.shape().clone(), vec![0f32; scales]))?
            .copy_into(&mut resident.scales)?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(error = %e, "Could not zero a device copy of gallery rows before freeing it.");
    }
}

/// Builds the search session for `segments` segments of dimension `dim` (on `device`, or as the
/// runtime's provider setting chooses when `None`).
fn search_session(
    runtime: &OrtRuntime,
    device: Option<Device>,
    dim: usize,
    segments: usize,
) -> Result<(Session, Device)> {
    let commit = |builder: ort::session::builder::SessionBuilder| -> Result<Session> {
        let mut model = Model::new([Opset::new(ONNX_DOMAIN, OPSET)?])?;
        model.set_graph(search_graph(dim, segments)?)?;
        Ok(model.into_session(&builder)?)
    };
    let what = format!("1:N search graph ({segments} segments)");
    match device {
        None => runtime.on_provider(&what, GraphOptimizationLevel::Disable, commit),
        Some(device) => runtime.on_device(device, GraphOptimizationLevel::Disable, commit),
    }
}

fn tensor(ty: TensorElementType, dims: &[(i64, &str)]) -> ValueType {
    ValueType::Tensor {
        ty,
        shape: Shape::new(dims.iter().map(|d| d.0)),
        dimension_symbols: SymbolicDimensions::new(dims.iter().map(|d| d.1.to_string())),
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<Attribute>,
) -> Result<Node> {
    Ok(Node::new(op, ONNX_DOMAIN, name, inputs, outputs, attrs)?)
}

/// The graph: inputs `probes` (i8, dim × batch), `probe_scales` (f32, 1 × batch), `k` (i64, [1])
/// and per segment `rows_s` (i8, len × dim), `scales_s` (f32, len × 1), `k_s` (i64, [1]); outputs
/// `scores` (f32, k × batch) and `rows` (i64, k × batch), best first per probe.
fn search_graph(dim: usize, segments: usize) -> Result<Graph> {
    let dim = dim as i64;
    let mut graph = Graph::new()?;
    let mut inputs = vec![
        Outlet::new(
            "probes",
            tensor(TensorElementType::Int8, &[(dim, ""), (-1, "batch")]),
        ),
        Outlet::new(
            "probe_scales",
            tensor(TensorElementType::Float32, &[(1, ""), (-1, "batch")]),
        ),
        Outlet::new("k", tensor(TensorElementType::Int64, &[(1, "")])),
    ];
    let (mut scores, mut rows) = (Vec::new(), Vec::new());
    for s in 0..segments {
        let len = format!("len_{s}");
        inputs.push(Outlet::new(
            format!("rows_{s}"),
            tensor(TensorElementType::Int8, &[(-1, &len), (dim, "")]),
        ));
        inputs.push(Outlet::new(
            format!("scales_{s}"),
            tensor(TensorElementType::Float32, &[(-1, &len), (1, "")]),
        ));
        inputs.push(Outlet::new(
            format!("k_{s}"),
            tensor(TensorElementType::Int64, &[(1, "")]),
        ));
        let n = |what: &str| format!("{what}_{s}");
        graph.add_node(node(
            "MatMulInteger",
            &n("matmul"),
            &[&n("rows"), "probes"],
            &[&n("dots")],
            vec![],
        )?)?;
        graph.add_node(node(
            "Cast",
            &n("cast"),
            &[&n("dots")],
            &[&n("dots_f32")],
            vec![Attribute::new("to", ONNX_FLOAT)?],
        )?)?;
        // `dot as f32 * probe_scale * row_scale`, in that order: the scan's rounding.
        graph.add_node(node(
            "Mul",
            &n("by_probe"),
            &[&n("dots_f32"), "probe_scales"],
            &[&n("partial")],
            vec![],
        )?)?;
        graph.add_node(node(
            "Mul",
            &n("by_row"),
            &[&n("partial"), &n("scales")],
            &[&n("score")],
            vec![],
        )?)?;
        graph.add_node(node(
            "TopK",
            &n("top"),
            &[&n("score"), &n("k")],
            &[&n("top_scores"), &n("top_local")],
            top_k_attributes()?,
        )?)?;
        graph.add_node(node(
            "Add",
            &n("globalise"),
            &[&n("top_local"), &n("base")],
            &[&n("top_rows")],
            vec![],
        )?)?;
        // The editor takes initializers from ONNX Runtime's allocator, not from a Rust array.
        let mut base = Tensor::<i64>::new(&Allocator::default(), [1_usize])?;
        base.extract_tensor_mut().1[0] = (s * SEGMENT_ROWS) as i64;
        graph.add_initializer(n("base"), base, false)?;
        scores.push(n("top_scores"));
        rows.push(n("top_rows"));
    }
    let axis0 = || Attribute::new("axis", 0i64);
    graph.add_node(node(
        "Concat",
        "all_scores",
        &scores.iter().map(String::as_str).collect::<Vec<_>>(),
        &["candidate_scores"],
        vec![axis0()?],
    )?)?;
    graph.add_node(node(
        "Concat",
        "all_rows",
        &rows.iter().map(String::as_str).collect::<Vec<_>>(),
        &["candidate_rows"],
        vec![axis0()?],
    )?)?;
    graph.add_node(node(
        "TopK",
        "best",
        &["candidate_scores", "k"],
        &["scores", "best_at"],
        top_k_attributes()?,
    )?)?;
    graph.add_node(node(
        "GatherElements",
        "best_rows",
        &["candidate_rows", "best_at"],
        &["rows"],
        vec![axis0()?],
    )?)?;
    graph.set_inputs(inputs)?;
    graph.set_outputs([
        Outlet::new(
            "scores",
            tensor(TensorElementType::Float32, &[(-1, "k"), (-1, "batch")]),
        ),
        Outlet::new(
            "rows",
            tensor(TensorElementType::Int64, &[(-1, "k"), (-1, "batch")]),
        ),
    ])?;
    Ok(graph)
}

/// `TopK` along rows, largest first, sorted.
fn top_k_attributes() -> Result<Vec<Attribute>> {
    Ok(vec![
        Attribute::new("axis", 0i64)?,
        Attribute::new("largest", 1i64)?,
        Attribute::new("sorted", 1i64)?,
    ])
}
