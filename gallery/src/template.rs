//! Face templates: a face model's embedding, quantised to int8 with one symmetric scale per template.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which face model (and version) made an embedding. Templates of different models never compare.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelId {
    /// Model name, e.g. `"sface"`.
    pub name: String,
    /// Model version, e.g. `"2021dec"`.
    pub version: String,
}

impl ModelId {
    /// A model id from its name and version.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        ModelId {
            name: name.into(),
            version: version.into(),
        }
    }

    /// Checks that name and version are not empty.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.version.is_empty() {
            return Err(Error::InvalidModelId);
        }
        Ok(())
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// Largest int8 magnitude used. `-128` is never produced, so `|x| <= 127` holds for every element, which the
/// SIMD kernels rely on (no overflow in `maddubs`, no asymmetric range).
pub const QMAX: i8 = 127;

/// An embedding quantised to int8: `value[i] ≈ data[i] as f32 * scale`.
///
/// Invariants, checked on construction and on deserialisation: `data` is not empty, every element lies in
/// `[-127, 127]`, and `scale` is finite and positive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TemplateRepr")]
pub struct Template {
    model: ModelId,
    scale: f32,
    data: Vec<i8>,
}

/// The wire form of [`Template`]; deserialisation goes through it so the invariants are checked.
#[derive(Deserialize)]
struct TemplateRepr {
    model: ModelId,
    scale: f32,
    data: Vec<i8>,
}

/// Checks quantised values and their scale as a template holds them: some values, none -128,
/// a finite positive scale.
pub(crate) fn check_parts(scale: f32, data: &[i8]) -> Result<()> {
    if data.is_empty() {
        return Err(Error::InvalidTemplate {
            reason: "no values",
        });
    }
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::InvalidTemplate {
            reason: "scale must be finite and positive",
        });
    }
    if data.contains(&i8::MIN) {
        return Err(Error::InvalidTemplate {
            reason: "value -128 is outside [-127, 127]",
        });
    }
    Ok(())
}

impl TryFrom<TemplateRepr> for Template {
    type Error = Error;

    fn try_from(repr: TemplateRepr) -> Result<Self> {
        Template::from_parts(repr.model, repr.scale, repr.data)
    }
}

impl Template {
    /// Quantises an embedding: `scale = max|x| / 127`, `data[i] = round(x[i] / scale)` clamped to
    /// `[-127, 127]`.
    ///
    /// Errors on an empty vector, any NaN or infinity, and an all-zero (or too small to scale) vector.
    pub fn quantize(model: ModelId, embedding: &[f32]) -> Result<Template> {
        model.validate()?;
        let mut data = Vec::with_capacity(embedding.len());
        let scale = quantize_into(embedding, &mut data)?;
        Ok(Template { model, scale, data })
    }

    /// A template from already-quantised parts, checking the invariants.
    pub fn from_parts(model: ModelId, scale: f32, data: Vec<i8>) -> Result<Template> {
        model.validate()?;
        check_parts(scale, &data)?;
        Ok(Template { model, scale, data })
    }

    /// The model that made the embedding.
    pub fn model(&self) -> &ModelId {
        &self.model
    }

    /// The dequantisation scale.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The quantised values.
    pub fn data(&self) -> &[i8] {
        &self.data
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.data.len()
    }

    /// The approximate embedding: `data[i] as f32 * scale`.
    pub fn dequantize(&self) -> Vec<f32> {
        self.data
            .iter()
            .map(|&q| f32::from(q) * self.scale)
            .collect()
    }
}

/// Quantises `values` into `out` (cleared first) and returns the scale. The one quantiser used for templates
/// and probes alike, so both sides of a dot product use the same scheme.
pub(crate) fn quantize_into(values: &[f32], out: &mut Vec<i8>) -> Result<f32> {
    if values.is_empty() {
        return Err(Error::EmptyVector);
    }
    let mut max_abs = 0.0f32;
    for (index, &x) in values.iter().enumerate() {
        if !x.is_finite() {
            return Err(Error::NonFinite { index });
        }
        max_abs = max_abs.max(x.abs());
    }
    let scale = max_abs / f32::from(QMAX);
    // A zero vector has no direction; a subnormal scale would make `x / scale` overflow.
    if !scale.is_normal() {
        return Err(Error::ZeroVector);
    }
    out.clear();
    out.extend(values.iter().map(|&x| {
        // In range after the clamp, so the cast is exact.
        (x / scale).round().clamp(-f32::from(QMAX), f32::from(QMAX)) as i8
    }));
    Ok(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sface() -> ModelId {
        ModelId::new("sface", "2021dec")
    }

    #[test]
    fn quantize_maps_max_to_127_and_never_minus_128() {
        let t = Template::quantize(sface(), &[1.0, -1.0, 0.5, -0.25, 0.0]).unwrap();
        assert_eq!(t.data(), &[127, -127, 64, -32, 0]);
        assert_eq!(t.scale(), 1.0 / 127.0);
        assert_eq!(t.dim(), 5);
        // The negative extreme maps to -127, never -128.
        let t = Template::quantize(sface(), &[-3.0, 1.0]).unwrap();
        assert_eq!(t.data(), &[-127, 42]);
    }

    #[test]
    fn dequantize_is_within_half_a_step() {
        let values: Vec<f32> = (0..128)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let t = Template::quantize(sface(), &values).unwrap();
        for (x, y) in values.iter().zip(t.dequantize()) {
            assert!((x - y).abs() <= t.scale() * 0.5 + 1e-6, "{x} vs {y}");
        }
    }

    #[test]
    fn bad_vectors_are_errors() {
        let q = |v: &[f32]| Template::quantize(sface(), v).map(|_| ()).unwrap_err();
        assert_eq!(q(&[]), Error::EmptyVector);
        assert_eq!(q(&[0.0, 1.0, f32::NAN]), Error::NonFinite { index: 2 });
        assert_eq!(q(&[f32::INFINITY]), Error::NonFinite { index: 0 });
        assert_eq!(q(&[f32::NEG_INFINITY, 1.0]), Error::NonFinite { index: 0 });
        assert_eq!(q(&[0.0; 16]), Error::ZeroVector);
        assert_eq!(q(&[-0.0, 0.0]), Error::ZeroVector);
        assert_eq!(q(&[1e-44, 0.0]), Error::ZeroVector);
        assert_eq!(q(&[]).code(), "empty_vector");
        assert_eq!(q(&[0.0]).code(), "zero_vector");
        let err = Template::quantize(ModelId::new("", "v1"), &[1.0]).unwrap_err();
        assert_eq!(err, Error::InvalidModelId);
    }

    #[test]
    fn extreme_magnitudes_quantize() {
        let t = Template::quantize(sface(), &[f32::MAX, -f32::MAX, 0.0]).unwrap();
        assert_eq!(t.data(), &[127, -127, 0]);
        let t = Template::quantize(sface(), &[1e-30, -5e-31]).unwrap();
        assert_eq!(t.data(), &[127, -64]);
    }

    #[test]
    fn postcard_round_trip_and_invariants_on_decode() {
        let t = Template::quantize(sface(), &[0.1, -0.2, 0.3]).unwrap();
        let bytes = postcard::to_stdvec(&t).unwrap();
        let back: Template = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, t);

        #[derive(Serialize)]
        struct Raw {
            model: ModelId,
            scale: f32,
            data: Vec<i8>,
        }
        let raw = |scale, data| {
            postcard::to_stdvec(&Raw {
                model: sface(),
                scale,
                data,
            })
            .unwrap()
        };
        assert!(postcard::from_bytes::<Template>(&raw(1.0, vec![1, -128])).is_err());
        assert!(postcard::from_bytes::<Template>(&raw(f32::NAN, vec![1])).is_err());
        assert!(postcard::from_bytes::<Template>(&raw(-1.0, vec![1])).is_err());
        assert!(postcard::from_bytes::<Template>(&raw(1.0, vec![])).is_err());
        assert!(postcard::from_bytes::<Template>(&raw(0.5, vec![1, -127])).is_ok());
    }
}
