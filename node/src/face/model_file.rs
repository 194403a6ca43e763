//! Model files as bytes, pure: SHA-256 pinning, and freeing a detector's spatial input dimensions.
//!
//! YuNet 2023mar declares a fixed `1×3×640×640` input although its graph is size-agnostic
//! (its reshapes use `-1`, its resizes use scales). ONNX Runtime enforces declared shapes, so
//! [`free_spatial_dims`] rewrites the first graph input's height and width from fixed values to
//! named (symbolic) dimensions, directly in the protobuf bytes. Then a 720p frame runs at 640×384
//! instead of being padded to 640×640, as OpenCV's DNN does by reshaping.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why a model file could not be rewritten.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

// Field numbers in onnx.proto along ModelProto.graph.input[0].type.tensor_type.shape.
const MODEL_GRAPH: u64 = 7;
const GRAPH_INPUT: u64 = 11;
const VALUE_INFO_TYPE: u64 = 2;
const TYPE_TENSOR: u64 = 1;
const TENSOR_SHAPE: u64 = 2;
const SHAPE_DIM: u64 = 1;
const DIM_PARAM: u64 = 2;
const LEN: u64 = 2;

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, Malformed> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or(Malformed("truncated varint"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Malformed("varint too long"))
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One field of a message: number, wire type, the whole encoded field, and its payload if LEN.
struct Field<'a> {
    number: u64,
    raw: &'a [u8],
    payload: Option<&'a [u8]>,
}

fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, Malformed> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = read_varint(buf, &mut pos)?;
        let payload = match key & 7 {
            0 => {
                read_varint(buf, &mut pos)?;
                None
            }
            1 => {
                pos = pos
                    .checked_add(8)
                    .filter(|p| *p <= buf.len())
                    .ok_or(Malformed("truncated fixed64"))?;
                None
            }
            2 => {
                let len = usize::try_from(read_varint(buf, &mut pos)?)
                    .map_err(|_| Malformed("length overflow"))?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or(Malformed("truncated field"))?;
                let p = &buf[pos..end];
                pos = end;
                Some(p)
            }
            5 => {
                pos = pos
                    .checked_add(4)
                    .filter(|p| *p <= buf.len())
                    .ok_or(Malformed("truncated fixed32"))?;
                None
            }
            _ => return Err(Malformed("unsupported wire type")),
        };
        out.push(Field {
            number: key >> 3,
            raw: &buf[start..pos],
            payload,
        });
    }
    Ok(out)
}

fn write_len_field(out: &mut Vec<u8>, number: u64, payload: &[u8]) {
    write_varint(out, number << 3 | LEN);
    write_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Rewrites the first field `path[0]` of `msg` (recursively along `path`) with `leaf`; every other
/// byte is copied unchanged.
fn rewrite(
    msg: &[u8],
    path: &[u64],
    leaf: &dyn Fn(&[u8]) -> Result<Vec<u8>, Malformed>,
) -> Result<Vec<u8>, Malformed> {
    let Some((&first, rest)) = path.split_first() else {
        return leaf(msg);
    };
    let mut out = Vec::with_capacity(msg.len() + 16);
    let mut done = false;
    for f in fields(msg)? {
        match f.payload {
            Some(p) if f.number == first && !done => {
                write_len_field(&mut out, first, &rewrite(p, rest, leaf)?);
                done = true;
            }
            _ => out.extend_from_slice(f.raw),
        }
    }
    if done {
        Ok(out)
    } else {
        Err(Malformed("expected field not found"))
    }
}

/// Replaces dimensions 2 and 3 (height, width) of the first graph input of an ONNX model with the
/// symbolic dimensions `height` and `width`. Errors if the model is not shaped as expected.
pub fn free_spatial_dims(model: &[u8]) -> Result<Vec<u8>, Malformed> {
    let shape = |shape: &[u8]| -> Result<Vec<u8>, Malformed> {
        let fs = fields(shape)?;
        if fs.iter().filter(|f| f.number == SHAPE_DIM).count() != 4 {
            return Err(Malformed("first input is not 4-dimensional"));
        }
        let mut out = Vec::with_capacity(shape.len() + 16);
        let mut index = 0;
        for f in fs {
            if f.number == SHAPE_DIM {
                match index {
                    2 | 3 => {
                        let mut dim = Vec::new();
                        write_len_field(
                            &mut dim,
                            DIM_PARAM,
                            if index == 2 { b"height" } else { b"width" },
                        );
                        write_len_field(&mut out, SHAPE_DIM, &dim);
                    }
                    _ => out.extend_from_slice(f.raw),
                }
                index += 1;
            } else {
                out.extend_from_slice(f.raw);
            }
        }
        Ok(out)
    };
    rewrite(
        model,
        &[
            MODEL_GRAPH,
            GRAPH_INPUT,
            VALUE_INFO_TYPE,
            TYPE_TENSOR,
            TENSOR_SHAPE,
        ],
        &shape,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_len_field(&mut out, number, payload);
        out
    }

    fn dim_value(v: u64) -> Vec<u8> {
        let mut d = vec![0x08];
        write_varint(&mut d, v);
        len_field(SHAPE_DIM, &d)
    }

    /// A model with one 1×3×640×640 input, a varint field before the graph and a second input.
    fn tiny_model() -> Vec<u8> {
        let shape: Vec<u8> = [1, 3, 640, 640]
            .iter()
            .flat_map(|v| dim_value(*v))
            .collect();
        let tensor = [vec![0x08, 0x01], len_field(TENSOR_SHAPE, &shape)].concat();
        let value_info = [
            len_field(1, b"input"),
            len_field(VALUE_INFO_TYPE, &len_field(TYPE_TENSOR, &tensor)),
        ]
        .concat();
        let graph = [
            len_field(GRAPH_INPUT, &value_info),
            len_field(GRAPH_INPUT, &value_info),
        ]
        .concat();
        [vec![0x08, 0x07], len_field(MODEL_GRAPH, &graph)].concat()
    }

    #[test]
    fn frees_height_and_width_of_the_first_input_only() {
        let patched = free_spatial_dims(&tiny_model()).expect("patches");
        let text = String::from_utf8_lossy(&patched);
        assert_eq!(text.matches("height").count(), 1);
        assert_eq!(text.matches("width").count(), 1);
        assert_eq!(
            &patched[..2],
            &[0x08, 0x07],
            "fields before the graph are copied"
        );
        // The second input keeps its fixed 640s: 2 of the original 4 varint-encoded 640s remain.
        let six_forty = [0x08, 0x80, 0x05];
        assert_eq!(patched.windows(3).filter(|w| *w == six_forty).count(), 2);
        // Patching an already-patched model is harmless: the shape is still 4-dimensional.
        assert!(free_spatial_dims(&patched).is_ok());
    }

    #[test]
    fn malformed_bytes_are_errors() {
        let model = tiny_model();
        for cut in [1, 3, 10, model.len() - 1] {
            assert!(free_spatial_dims(&model[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            free_spatial_dims(&[0x08, 0x01]),
            Err(Malformed("expected field not found"))
        );
        assert!(free_spatial_dims(&[0xff; 12]).is_err());
    }
}
