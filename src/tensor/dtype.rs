//! dtype names as PyTorch spells them, both ways.

use crate::error::{Error, Result};
use tch::Kind;

/// PyTorch's name of a dtype (`torch.float32` without the `torch.`).
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Uint8 => "uint8",
        Kind::Int8 => "int8",
        Kind::Int16 => "int16",
        Kind::Int => "int32",
        Kind::Int64 => "int64",
        Kind::Half => "float16",
        Kind::Float => "float32",
        Kind::Double => "float64",
        Kind::ComplexHalf => "complex32",
        Kind::ComplexFloat => "complex64",
        Kind::ComplexDouble => "complex128",
        Kind::Bool => "bool",
        Kind::BFloat16 => "bfloat16",
        _ => "other",
    }
}

/// Parses a dtype name; accepts PyTorch's names and their common aliases.
pub fn parse_kind(name: &str) -> Result<Kind> {
    let name = name.trim().trim_start_matches("torch.");
    Ok(match name {
        "uint8" | "u8" => Kind::Uint8,
        "int8" | "i8" => Kind::Int8,
        "int16" | "short" | "i16" => Kind::Int16,
        "int32" | "int" | "i32" => Kind::Int,
        "int64" | "long" | "i64" => Kind::Int64,
        "float16" | "half" | "f16" => Kind::Half,
        "bfloat16" | "bf16" => Kind::BFloat16,
        "float32" | "float" | "f32" => Kind::Float,
        "float64" | "double" | "f64" => Kind::Double,
        "bool" => Kind::Bool,
        _ => {
            return Err(Error::arg(format!(
                "unknown dtype '{name}': use one of float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool"
            )))
        }
    })
}

pub fn is_float(kind: Kind) -> bool {
    matches!(kind, Kind::Half | Kind::Float | Kind::Double | Kind::BFloat16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [
            Kind::Uint8,
            Kind::Int8,
            Kind::Int16,
            Kind::Int,
            Kind::Int64,
            Kind::Half,
            Kind::Float,
            Kind::Double,
            Kind::Bool,
            Kind::BFloat16,
        ] {
            assert_eq!(parse_kind(kind_name(k)).unwrap(), k);
        }
        assert!(parse_kind("float128").unwrap_err().to_string().contains("unknown dtype"));
    }
}
