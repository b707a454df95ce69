//! Serde helpers that write u128 amounts and ids as decimal strings: JSON numbers cannot hold
//! them exactly, so the API never sends them as numbers.

use serde::{Deserialize, Deserializer, Serializer};

/// Serializes a u128 as a decimal string.
pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_string())
}

/// Deserializes a u128 from a decimal string of digits only.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// Parses a decimal string of 1 to 39 digits into a u128.
pub fn parse(text: &str) -> Result<u128, String> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!(
            "expected a decimal string of digits, found {text:?}"
        ));
    }
    text.parse::<u128>()
        .map_err(|_| format!("{text:?} does not fit in 128 bits"))
}

/// The same for an optional u128 (absent fields are skipped by the caller).
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `Some(value)` as a decimal string and `None` as null.
    pub fn serialize<S: Serializer>(
        value: &Option<u128>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_str(&value.to_string()),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes an optional decimal string.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u128>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| super::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_accepts_digits_only() {
        // Proves signs, spaces, exponents and overflow are refused rather than coerced.
        assert_eq!(super::parse("0"), Ok(0));
        assert_eq!(super::parse(&u128::MAX.to_string()), Ok(u128::MAX));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1e3",
            "1.0",
            "340282366920938463463374607431768211456",
        ] {
            assert!(super::parse(bad).is_err(), "{bad}");
        }
    }
}
